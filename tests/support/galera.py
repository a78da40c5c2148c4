"""A three-node MariaDB Galera cluster for the cluster tier, through scripts/galera-cluster.sh.

    with GaleraCluster() as cluster:
        url = cluster.url("c2c_x", order=(2, 3, 1))   # host list, node 2 preferred
        cluster.kill(2); cluster.rejoin(2)

Its data directory is made under /tmp (the nodes run as mysql when the tests run as root, and
pytest's own temporary directories are private to root); its ports are a free block.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pymysql

from tests.support.lifecycle import StartStop
from tests.support.processes import REPO

SCRIPT = REPO / "scripts" / "galera-cluster.sh"
GALERA_PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
OFFSETS = [o + n for o in (0, 10, 20, 30) for n in range(3)]  # the script's port layout


def available() -> bool:
    return GALERA_PROVIDER.exists() and shutil.which("rsync") is not None and Path(
        "/usr/sbin/mariadbd").exists()


def _free_block() -> int:
    """A base port whose whole block (base+0..2, +10..12, +20..22, +30..32) is free now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 40 > 65535:
            continue
        taken = False
        for offset in OFFSETS:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", base + offset))
                except OSError:
                    taken = True
                    break
        if not taken:
            return base
    raise RuntimeError("no free block of ports for the cluster")


class GaleraCluster(StartStop):
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="c2c-galera-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.base = _free_block()

    def _run(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run([str(SCRIPT), args[0], str(self.dir), *args[1:]], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"galera-cluster.sh {' '.join(args)} failed:\n"
                               f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> GaleraCluster:
        self._run("start", str(self.base))
        return self

    def stop(self) -> None:
        try:
            self._run("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def port(self, node: int) -> int:
        return self.base + node - 1

    def kill(self, node: int) -> None:
        """kill -9: the node's connections drop, the others evict it within seconds."""
        self._run("kill", str(node))

    def rejoin(self, node: int) -> None:
        """Start it again and wait until it is Synced (it catches up by state transfer)."""
        self._run("rejoin", str(node))

    def status(self) -> str:
        return self._run("status")

    def url(self, database: str, order: Sequence[int] = (1, 2, 3)) -> str:
        hosts = ",".join(f"127.0.0.1:{self.port(n)}" for n in order)
        return f"mysql+pymysql://root@{hosts}/{database}"

    def node_url(self, node: int, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port(node)}/{database}"

    def execute(self, node: int, statement: str) -> list[tuple[object, ...]]:
        conn = pymysql.connect(host="127.0.0.1", port=self.port(node), user="root",
                               autocommit=True, connect_timeout=5)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        self.execute(1, f"CREATE DATABASE `{name}`")

    def checksums(self, node: int, database: str, tables: Sequence[str]) -> dict[str, int]:
        """CHECKSUM TABLE of each table on ``node``: equal on every node once they agree."""
        names = ", ".join(f"`{database}`.`{t}`" for t in tables)
        conn = pymysql.connect(host="127.0.0.1", port=self.port(node), user="root",
                               autocommit=True, connect_timeout=5)
        try:
            with conn.cursor() as cursor:
                # Read once this node applied everything committed anywhere before.
                cursor.execute("SET SESSION wsrep_sync_wait = 1")
                cursor.execute(f"CHECKSUM TABLE {names}")
                return {str(name).split(".")[-1]: int(value) for name, value in cursor.fetchall()}
        finally:
            conn.close()
