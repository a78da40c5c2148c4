"""Count what an accepted request says to the database, on the wire.

    python -m bench.queries --database URL --switch esl://:PW@127.0.0.1:PORT [--requests 200]

Runs in its own process, gevent-patched like a gunicorn worker, and builds the real app with
``create_app(Runtime.build(config))``; only the switch command connections are started (no
event listener, no callback dispatcher), so every database command counted is the request's own.
The count is taken below SQLAlchemy, on PyMySQL's ``_execute_command``: every COM_QUERY (SELECT,
UPDATE, INSERT, COMMIT, ROLLBACK...) and every COM_PING (SQLAlchemy's pool_pre_ping) is one round
trip to MariaDB. Statements are normalised (literals to ``?``) and listed with their count per
request. The first requests warm the pool and caches and are not counted.

Prints one JSON object on stdout.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import falcon.testing  # noqa: E402
import pymysql.connections  # noqa: E402
from pymysql.constants import COMMAND  # noqa: E402

from bench.sqlnorm import normalise  # noqa: E402
from c2c.api.app import create_app  # noqa: E402
from c2c.api.runtime import Runtime  # noqa: E402
from c2c.config import Config  # noqa: E402

_counting = False
_commands: Counter[str] = Counter()
_original = pymysql.connections.Connection._execute_command

def _counted(self, command, sql):  # noqa: ANN001, ANN202
    if _counting:
        if command == COMMAND.COM_QUERY:
            text = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else sql
            _commands[normalise(text)] += 1
        elif command == COMMAND.COM_PING:
            _commands["COM_PING (pool_pre_ping on checkout)"] += 1
        else:
            _commands[f"command {command}"] += 1
    return _original(self, command, sql)


pymysql.connections.Connection._execute_command = _counted


def main(argv: list[str] | None = None) -> int:
    global _counting
    parser = argparse.ArgumentParser(prog="python -m bench.queries")
    parser.add_argument("--database", required=True)
    parser.add_argument("--switch", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--number-base", type=int, default=400_000_000)
    parser.add_argument("--reject", choices=("none", "bad-key", "malformed"), default="none")
    args = parser.parse_args(argv)

    config = Config.from_env({"C2C_DATABASE_URL": args.database, "C2C_SWITCHES": args.switch,
                              "C2C_CALLBACK_ALLOW_PRIVATE": "on", "C2C_LOG_LEVEL": "WARNING"})
    runtime = Runtime.build(config)
    runtime.switches.start()
    if not runtime.switches.wait_any_connected(15):
        print(json.dumps({"error": "switch not connected"}))
        return 1
    store = runtime.store
    api_key = store.accounts.create("queries", 1_000_000_000).api_key
    client = falcon.testing.TestClient(create_app(runtime))

    from bench.stack import CALLEE_BASE, CALLER_BASE

    def request(i: int) -> str:
        params = {
            "api_key": api_key if args.reject != "bad-key" else "no-such-key",
            "caller_phone_number": str(CALLER_BASE + args.number_base + i),
            "caller_country_code": "1",
            "callee_phone_number": str(CALLEE_BASE + args.number_base + i),
            "callee_country_code": "1",
        }
        if args.reject == "malformed":
            params["caller_phone_number"] = "12ab"
        return client.simulate_get("/api/clicktocall/", query_string=urlencode(params)).text

    warmup = 20
    bodies: Counter[str] = Counter()
    for i in range(warmup):
        request(i)
    _commands.clear()
    _counting = True
    started = time.perf_counter()
    for i in range(warmup, warmup + args.requests):
        bodies[request(i)] += 1
    elapsed = time.perf_counter() - started
    _counting = False
    runtime.switches.stop()
    store.dispose()
    total = sum(_commands.values())
    print(json.dumps({
        "requests": args.requests,
        "bodies": dict(bodies),
        "round_trips_per_request": total / args.requests,
        "statements": {sql: n / args.requests for sql, n in _commands.most_common()},
        "serial_ms_per_request": 1000 * elapsed / args.requests,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
