"""`c2c worker`: the switches' event listeners and the callback dispatcher, without the API.

With C2C_BACKGROUND=separate, gunicorn's workers only answer requests (and place calls); one or
more `c2c worker` processes, on any hosts, hold the switches' events (one holder per switch,
chosen through the store's leases, as among gunicorn workers), settle the calls and deliver the
callbacks and progress webhooks. Run two for a holder to take over from when one dies. Stops on
TERM or INT: it lets go of the switches' events so another takes over at once.

With C2C_METRICS_DIR set to gunicorn's directory, its gauges and counters are in gunicorn's
/metrics (the dispatcher's attempts, the listener's backlog).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import Any

from c2c.config import Config

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "worker", help="event listeners and callback dispatcher, without the API "
                       "(with C2C_BACKGROUND=separate)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    import gevent
    import gevent.event

    from c2c.api.runtime import Runtime

    runtime = Runtime.build(config)
    if config.background != "separate":
        log.warning("C2C_BACKGROUND=%s: gunicorn's workers listen to the switches too; this "
                    "worker competes with them for the events (harmless, but set "
                    "C2C_BACKGROUND=separate to leave the API workers to requests)",
                    config.background)
    stopping = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    runtime.start(background=True)
    log.info("c2c worker %d running: %d switch(es)", os.getpid(), len(runtime.owners))
    try:
        stopping.wait()
    finally:
        runtime.stop()
        runtime.store.dispose()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
        log.info("c2c worker %d stopped", os.getpid())
    return 0
