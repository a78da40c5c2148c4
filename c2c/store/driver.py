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

import functools
import ssl
from typing import Any

import pymysql.connections


@functools.cache
def _opportunistic_context() -> ssl.SSLContext:
    # What pymysql builds for no options: no CA given, so no verification.
    context = ssl.create_default_context()
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Connection(pymysql.connections.Connection):
    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:
            return _opportunistic_context()
        return super()._create_ssl_ctx(sslp)


def connect(**kwargs: Any) -> Connection:
    return Connection(**kwargs)
