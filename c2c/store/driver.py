"""The MySQL/MariaDB driver's connection, as the pool makes it.

With no TLS option, pymysql (1.2 and later) tries TLS whenever the server offers it, and builds
a fresh SSLContext, loading the system's whole CA store, for every connection: about 25 ms of
CPU against 0.5 ms for the rest of a local connect. Every pool that reconnects at once (after a
MariaDB restart, a Galera node lost) paid that per connection, at the worst moment. That
opportunistic context verifies nothing, so one per process serves every connection. A URL that
asks for TLS (``?ssl_ca=...``, ``?ssl_verify_cert=true``) still gets its own context per
connection, as pymysql builds it, so a renewed certificate file is read on the next connect.
"""

from __future__ import annotations

import ssl
from typing import Any, ClassVar

import pymysql.connections


class Connection(pymysql.connections.Connection):
    _opportunistic: ClassVar[ssl.SSLContext | None] = None  # pymysql's own, made once

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if not (isinstance(sslp, dict) and not sslp):
            return super()._create_ssl_ctx(sslp)
        if Connection._opportunistic is None:
            Connection._opportunistic = super()._create_ssl_ctx(sslp)
        return Connection._opportunistic
