"""Connecting to MySQL/MariaDB through a list of hosts: one server, or the nodes of a Galera cluster.

``C2C_DATABASE_URL`` may name several hosts, a failover list in order of preference:
``mysql+pymysql://user:pw@host1:3306,host2:3306,host3:3306/c2c``. Every new connection goes to
the first host that accepts it *and can serve*: a Galera node that is not ready (it left the
primary component, or is still joining: ``wsrep_ready=OFF``) refuses queries, so it is passed
over, as is a node that is not Synced while a Synced one answers. A host that failed is tried
last for AVOID_SECONDS, so that new connections do not each wait on it first.

The pool drops its connections when one of them reports the node unusable (errors the pool
treats as a disconnect, 1047 among them: engine.py), so a worker whose node leaves the cluster
is on another node with its next transaction, and back on the preferred one when its
connections are recycled (engine.MYSQL_POOL_RECYCLE) or fail again.

On a Galera node each session sets ``wsrep_sync_wait=1``: a read waits until the node has
applied every write the cluster committed before it began, so a host reading through one node
sees what another host just wrote through another (what one server always gave us).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pymysql

from c2c.store import driver

log = logging.getLogger(__name__)

AVOID_SECONDS = 10.0
GALERA_SYNCED = 4  # wsrep_local_state: Synced (2 is a donor, possibly blocked by its transfer)
GALERA_SESSION = "SET SESSION wsrep_sync_wait = 1"


@dataclass(frozen=True)
class Host:
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def split_hosts(url: str) -> tuple[str, list[Host]]:
    """``url`` with its first host only (what SQLAlchemy can parse), and every host it names in
    order. ValueError for a list that cannot be read."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not a URL")
    authority, slash, path = rest.partition("/")
    credentials, at, hostlist = authority.rpartition("@")
    hosts = []
    for item in hostlist.split(","):
        item = item.strip()
        if not item:
            raise ValueError("an empty host in the host list")
        parts = urlsplit(f"//{item}")
        try:
            port = parts.port or 3306
        except ValueError:
            raise ValueError(f"{item!r}: not host[:port]") from None
        if not parts.hostname:
            raise ValueError(f"{item!r}: not host[:port]")
        hosts.append(Host(parts.hostname, port))
    first = hosts[0]
    host_text = f"[{first.host}]" if ":" in first.host else first.host
    single = f"{scheme}://{credentials}{at}{host_text}:{first.port}{slash}{path}"
    return single, hosts


class HostList:
    """The ``creator`` of the engine's pool: a DB-API connection to the first usable host."""

    def __init__(self, hosts: Sequence[Host], connect_args: dict[str, Any],
                 connect: Callable[..., Any] = driver.Connection,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hosts = list(hosts)
        self._connect_args = connect_args
        self._connect = connect
        self._clock = clock
        self._failed: dict[Host, float] = {}
        self._lock = threading.Lock()
        self.current: Host | None = None  # where the last connection went

    def __call__(self) -> Any:
        return self.connect()

    def connect(self) -> Any:
        now = self._clock()
        with self._lock:
            recent = {h for h, at in self._failed.items() if now - at < AVOID_SECONDS}
        order = [h for h in self.hosts if h not in recent] + [h for h in self.hosts if h in recent]
        errors: list[str] = []
        fallback = None  # a ready node that is not Synced, if no Synced one answers
        for host in order:
            try:
                conn = self._connect(host=host.host, port=host.port, **self._connect_args)
            except pymysql.err.MySQLError as exc:
                errors.append(f"{host.name}: {exc}")
                self._note_failed(host)
                continue
            try:
                state = galera_state(conn)
            except pymysql.err.MySQLError as exc:
                errors.append(f"{host.name}: {exc}")
                self._note_failed(host)
                _close(conn)
                continue
            if state is None or state == GALERA_SYNCED:
                self._chosen(host, state is not None)
                if fallback is not None:
                    _close(fallback[1])
                return conn
            if state > 0 and fallback is None:
                fallback = (host, conn)
                continue
            errors.append(f"{host.name}: a Galera node that is not ready (wsrep_ready=OFF)")
            self._note_failed(host)
            _close(conn)
        if fallback is not None:
            self._chosen(fallback[0], True)
            return fallback[1]
        raise pymysql.err.OperationalError(2003, "no database host can serve: " +
                                           "; ".join(errors))

    def _note_failed(self, host: Host) -> None:
        with self._lock:
            first = host not in self._failed
            self._failed[host] = self._clock()
        if first and len(self.hosts) > 1:
            log.warning("database host %s unusable; trying the next", host.name)

    def _chosen(self, host: Host, galera: bool) -> None:
        with self._lock:
            self._failed.pop(host, None)
            moved = self.current is not None and self.current != host
            self.current = host
        if moved:
            log.warning("database connections now go to %s", host.name)

    @property
    def preferred(self) -> bool:
        return self.current is None or self.current == self.hosts[0]


def galera_state(conn: Any) -> int | None:
    """None for a server that is not a Galera node; else its wsrep_local_state when it is
    ready (4: Synced), 0 when it is not ready. A Galera session also gets causal reads."""
    with conn.cursor() as cursor:
        try:
            cursor.execute("SELECT @@wsrep_on")
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1193:  # unknown variable: MySQL, not MariaDB
                return None
            raise
        row = cursor.fetchone()
        if not row or not int(row[0] or 0):
            conn.rollback()
            return None
        cursor.execute("SHOW STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state')")
        status = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
        if status.get("wsrep_ready", "OFF").upper() != "ON":
            conn.rollback()
            return 0
        cursor.execute(GALERA_SESSION)
    conn.rollback()  # end the checks' transaction: the session starts clean
    return int(status.get("wsrep_local_state") or 0)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # closing a connection we give up on: nothing to report
        pass
