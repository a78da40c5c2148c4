"""gunicorn settings for c2c: gevent workers, nothing opened before the fork.

Override with environment variables: C2C_BIND (127.0.0.1:8080), C2C_WORKERS (CPU count),
C2C_WORKER_CONNECTIONS (1000), or with gunicorn's own command-line flags.
"""

import multiprocessing
import os

bind = os.environ.get("C2C_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("C2C_WORKERS", multiprocessing.cpu_count()))
worker_class = "gevent"
worker_connections = int(os.environ.get("C2C_WORKER_CONNECTIONS", "1000"))
# Each worker loads the app after the fork, so no socket or database connection is shared.
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
# nginx in front sets X-Forwarded-*; trust only the local proxy.
forwarded_allow_ips = "127.0.0.1,::1"
# The access log must never record the query string (it carries api_key).
accesslog = os.environ.get("C2C_ACCESS_LOG") or None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):
    # Runs in the worker after gevent has patched the world: start switches, listeners, dispatch.
    runtime = getattr(worker.wsgi, "c2c_runtime", None)
    if runtime is not None:
        runtime.start()


def worker_exit(server, worker):
    runtime = getattr(getattr(worker, "wsgi", None), "c2c_runtime", None)
    if runtime is not None:
        runtime.stop()
