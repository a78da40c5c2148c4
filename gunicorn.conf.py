"""gunicorn settings for c2c: gevent workers, nothing opened before the fork.

Override with environment variables: C2C_BIND (127.0.0.1:8080), C2C_WORKERS (CPU count),
C2C_WORKER_CONNECTIONS (1000), C2C_METRICS_DIR (where the workers keep their Prometheus values;
default a fresh temporary directory), C2C_CONTROL_SOCKET (gunicorn's control socket, for
`gunicornc`; default one per bind address, see below), or with gunicorn's own command-line flags.
"""

import glob
import multiprocessing
import os
import re
import shutil
import tempfile

bind = os.environ.get("C2C_BIND", "127.0.0.1:8080")


def control_socket_path(bind_address, environ=os.environ):
    """gunicorn's control socket for this instance.

    gunicorn's default is one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl, else
    ~/.gunicorn/gunicorn.ctl): a second master on the host takes it over and the first one's exit
    removes it, so `gunicornc` reaches the wrong instance or none. Each c2c instance listens on its
    own address, so the path is derived from it: c2c-127.0.0.1-8080.ctl in the same directory.
    """
    explicit = environ.get("C2C_CONTROL_SOCKET")
    if explicit:
        return explicit
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        directory = runtime_dir
    else:
        directory = os.path.join(os.path.expanduser("~"), ".gunicorn")
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", bind_address.split(",")[0].strip()).strip("-")
    return os.path.join(directory, f"c2c-{name or 'default'}.ctl")


control_socket = control_socket_path(bind)
workers = int(os.environ.get("C2C_WORKERS", multiprocessing.cpu_count()))
worker_class = "gevent"
worker_connections = int(os.environ.get("C2C_WORKER_CONNECTIONS", "1000"))
# Each worker loads the app after the fork, so no socket or database connection is shared.
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
# A request line may carry a 2048-character callback_url percent-encoded (up to three times as
# long) besides the other parameters: gunicorn's default 4094 would answer such a GET 414.
# 8190 is gunicorn's most; nginx's large_client_header_buffers (8 KB) matches it.
limit_request_line = 8190
# nginx in front sets X-Forwarded-*; trust only the local proxy.
forwarded_allow_ips = "127.0.0.1,::1"
# The access log must never record the query string (it carries api_key).
accesslog = os.environ.get("C2C_ACCESS_LOG") or None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):
    # Runs in the worker after gevent has patched the world: start switches, listeners, dispatch.
    runtime = getattr(worker.wsgi, "c2c_runtime", None)
    if runtime is not None:
        # C2C_BACKGROUND=separate: this worker only answers requests; `c2c worker` listens to
        # the switches and delivers the callbacks.
        runtime.start(background=runtime.config.background == "workers")
        # Accept requests once calls can be placed: a fresh worker (start-up, HUP reload, the
        # replacement of a dead one) would otherwise answer 11 while its switch connects.
        runtime.switches.wait_any_connected(runtime.config.esl_timeout)


def worker_exit(server, worker):
    runtime = getattr(getattr(worker, "wsgi", None), "c2c_runtime", None)
    if runtime is not None:
        runtime.stop()


# Prometheus multiprocess mode: every worker writes its values to files in one directory, and
# /metrics sums them. prometheus_client chooses file-backed values once, when first imported, so
# this file only imports it inside hooks, and the directory is set before any worker forks.
_metrics_dir_made = []  # the temporary directory we created, removed again at exit


def on_starting(server):
    path = os.environ.get("C2C_METRICS_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        # Values left by a previous run's workers would be added to ours: start from zero.
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    else:
        path = tempfile.mkdtemp(prefix="c2c-metrics-")
        _metrics_dir_made.append(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by every forked worker
    server.log.info("Prometheus multiprocess directory: %s", path)


def child_exit(server, worker):
    # Drop the dead worker's live gauges (switch connected, listener); its counters still count.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    for path in _metrics_dir_made:
        shutil.rmtree(path, ignore_errors=True)
