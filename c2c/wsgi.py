"""The gunicorn entry point: `gunicorn -c gunicorn.conf.py c2c.wsgi:app`.

Building the app opens nothing (engines connect lazily); gunicorn.conf.py's post_worker_init starts
the switch connections and background greenlets in each worker, after the fork.
"""

from c2c.api.app import create_app
from c2c.api.runtime import Runtime
from c2c.config import Config

app = create_app(Runtime.build(Config.from_env()))
