"""A Python load generator, for comparison with wrk only (the benchmark itself uses wrk).

    python -m bench.pyclient URL --connections 32 --seconds 3

gevent greenlets on raw keep-alive sockets, one request in flight per connection, the leanest
Python client we could write (no HTTP library: the request bytes are prebuilt and the response
is framed by Content-Length). Prints ``{"requests": N, "seconds": S}``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402


def worker(host: str, port: int, request: bytes, stop_at: float, counts: list[int]) -> None:
    sock = socket.create_connection((host, port))
    buffer = b""
    try:
        while time.monotonic() < stop_at:
            sock.sendall(request)
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            while len(buffer) < length:
                buffer += sock.recv(65536)
            buffer = buffer[length:]
            counts[0] += 1
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pyclient")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    target = url.path + ("?" + url.query if url.query else "")
    request = (f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n").encode()
    counts = [0]
    started = time.monotonic()
    stop_at = started + args.seconds
    greenlets = [gevent.spawn(worker, url.hostname, url.port, request, stop_at, counts)
                 for _ in range(args.connections)]
    gevent.joinall(greenlets, timeout=args.seconds + 10)
    print(json.dumps({"requests": counts[0], "seconds": time.monotonic() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
