"""The c2c benchmark (see bench/run.py): ``.venv/bin/python -m bench [--quick]``."""
