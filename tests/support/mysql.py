"""A MySQL/MariaDB server for tests and the benchmark: an admin connection, and a uniquely named
database that exists for the length of a ``with`` block."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
from sqlalchemy.engine import make_url


def server_connection(server_url: str, connect_timeout: float = 3, io_timeout: float = 30
                      ) -> pymysql.connections.Connection:
    """An autocommit admin connection to the server ``server_url`` names (its database ignored)."""
    url = make_url(server_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=connect_timeout,
        read_timeout=io_timeout,
        write_timeout=io_timeout,
        autocommit=True,
    )


@contextmanager
def temporary_database(server_url: str, prefix: str, io_timeout: float = 30,
                       lock_wait_timeout: int = 10) -> Iterator[str]:
    """The URL of a fresh, empty database ``<prefix><random>``, dropped when the block ends."""
    name = f"{prefix}{secrets.token_hex(6)}"
    admin = server_connection(server_url, io_timeout=io_timeout)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"SET SESSION lock_wait_timeout = {int(lock_wait_timeout)}")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
