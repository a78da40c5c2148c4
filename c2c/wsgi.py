"""The gunicorn entry point: `gunicorn -c gunicorn.conf.py c2c.wsgi:app`.

Building the app opens nothing (engines connect lazily); gunicorn.conf.py's post_worker_init starts
the switch connections and background greenlets in each worker, after the fork.
"""

import logging
import sys

from c2c.api.app import create_app
from c2c.api.runtime import Runtime
from c2c.config import Config

config = Config.from_env()
# gunicorn configures only its own loggers: without this, c2c's lines (C2C_LOG_LEVEL) are lost.
logging.basicConfig(
    level=config.log_level,
    stream=sys.stderr,
    format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
)
app = create_app(Runtime.build(config))
