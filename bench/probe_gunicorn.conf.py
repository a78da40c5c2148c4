"""gunicorn.conf.py plus experiment knobs, for what-if measurements only (never the headline
figures): the real settings are loaded first, then BENCH_PROBE_* environment variables patch
c2c module constants in each worker before the app is imported (post_fork runs before the
worker loads the app, and preload_app is off).

    BENCH_PROBE_POOL=15:0         MYSQL_POOL_SIZE:MYSQL_POOL_OVERFLOW in c2c.store.engine
    BENCH_PROBE_NO_RESET=1        pool_reset_on_return=None (no ROLLBACK after each COMMIT)
    BENCH_PROBE_NO_PING=1         pool_pre_ping off
    BENCH_PROBE_SQL_OUT=DIR       count every command sent to MariaDB (normalised statement ->
                                  count), written to DIR/sql-<pid>.json every second
"""

import os
from pathlib import Path

_real = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"
exec(compile(_real.read_text(), str(_real), "exec"))  # noqa: S102 (our own settings file)


def post_fork(server, worker):  # noqa: ARG001 (gunicorn's hook signature)
    import c2c.store.engine as engine

    pool = os.environ.get("BENCH_PROBE_POOL")
    if pool:
        size, _, overflow = pool.partition(":")
        engine.MYSQL_POOL_SIZE = int(size)
        engine.MYSQL_POOL_OVERFLOW = int(overflow or 0)
    no_reset = os.environ.get("BENCH_PROBE_NO_RESET") == "1"
    no_ping = os.environ.get("BENCH_PROBE_NO_PING") == "1"
    if no_reset or no_ping:
        original = engine.create_engine

        def create_engine(url, **kwargs):
            if no_reset:
                kwargs["pool_reset_on_return"] = None
            if no_ping:
                kwargs["pool_pre_ping"] = False
            return original(url, **kwargs)

        engine.create_engine = create_engine
    if os.environ.get("BENCH_PROBE_SQL_OUT"):
        _count_sql(os.environ["BENCH_PROBE_SQL_OUT"])


_real_post_worker_init = post_worker_init  # noqa: F821 (defined by the exec above)


def post_worker_init(worker):
    _real_post_worker_init(worker)
    if _dumper:
        import gevent

        gevent.spawn(_dumper[0])


_dumper = []


def _count_sql(directory):
    import collections
    import json

    import gevent
    import pymysql.connections
    from pymysql.constants import COMMAND

    from bench.sqlnorm import normalise

    counts = collections.Counter()
    original = pymysql.connections.Connection._execute_command

    def counted(self, command, sql):
        if command == COMMAND.COM_QUERY:
            # A multi-row INSERT (executemany) comes as a bytearray.
            text = (sql.decode("utf-8", "replace") if isinstance(sql, (bytes, bytearray))
                    else sql)
            counts[normalise(text)] += 1
        elif command == COMMAND.COM_PING:
            counts["COM_PING (pool_pre_ping on checkout)"] += 1
        return original(self, command, sql)

    pymysql.connections.Connection._execute_command = counted
    path = os.path.join(directory, f"sql-{os.getpid()}.json")

    def dump():
        while True:
            gevent.sleep(1.0)
            with open(path + ".tmp", "w", encoding="utf-8") as handle:
                json.dump(dict(counts), handle)
            os.replace(path + ".tmp", path)

    _dumper.append(dump)
