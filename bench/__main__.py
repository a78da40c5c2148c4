"""``python -m bench``: see bench/run.py."""

import os
import sys

# The benchmark reuses the tests' process helpers (tests/support): run from anywhere.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.run import main  # noqa: E402

sys.exit(main())
