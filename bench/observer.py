"""The benchmark's witness, run as its own process: a callback receiver and an Event Socket tap.

    python -m bench.observer --out FILE [--esl HOST:PORT --esl-password PW]

- **Callback receiver** (HTTP on a free loopback port): answers every request ``200 ok`` and
  records ``C <X-C2C-Call-Id> <arrival time>``. A gevent stream server, not a thread per
  connection: it shares two cores with everything else and must stay cheap at hundreds/s.
- **Hangup tap** (optional): its own Event Socket connection to the simulator, subscribed to
  CHANNEL_HANGUP_COMPLETE only, records ``H <c2c_call_id> <arrival time>`` per leg. At time scale
  0 the simulator's virtual clock runs ahead of the wall clock, so the ``ended_at`` in the call
  row cannot be compared with an arrival time; the moment the switch *announced* the hangup can.
  The later of a call's two H lines is its hangup time.

Prints ``LISTENING 127.0.0.1:<port>`` once ready. Lines are flushed every 0.2 s and at SIGTERM.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from c2c.esl.protocol import FrameParser, encode_command, parse_event  # noqa: E402

_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
_MAX_REQUEST = 64 * 1024


class Recorder:
    def __init__(self, path: str) -> None:
        self._handle = open(path, "a", encoding="ascii", buffering=1 << 16)  # noqa: SIM115
        self.lines = 0

    def record(self, kind: str, call_id: str, at: float) -> None:
        self._handle.write(f"{kind} {call_id} {at:.6f}\n")
        self.lines += 1

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def serve_callback(recorder: Recorder, sock: socket.socket, _address: object) -> None:
    data = b""
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(8192)
            if not chunk:
                return
            data += chunk
            if len(data) > _MAX_REQUEST:
                return
        at = time.time()
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        call_id = "-"
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "x-c2c-call-id":
                call_id = value.strip()
                break
        recorder.record("C", call_id, at)
        sock.sendall(_ANSWER)
    except OSError:
        pass
    finally:
        sock.close()


def _read_frame(sock: socket.socket, parser: FrameParser, pending: list) -> object:
    while not pending:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("switch closed the connection")
        pending.extend(parser.feed(data))
    return pending.pop(0)


def tap_hangups(recorder: Recorder, host: str, port: int, password: str,
                subscribed: gevent.event.Event) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    parser = FrameParser()
    pending: list = []
    _read_frame(sock, parser, pending)  # auth/request
    sock.sendall(encode_command(f"auth {password}"))
    reply = _read_frame(sock, parser, pending)
    if not (reply.reply_text or "").startswith("+OK"):
        raise RuntimeError(f"tap: auth refused: {reply.reply_text}")
    sock.sendall(encode_command("event plain CHANNEL_HANGUP_COMPLETE"))
    _read_frame(sock, parser, pending)
    subscribed.set()
    sock.settimeout(None)
    while True:
        frame = _read_frame(sock, parser, pending)
        at = time.time()
        if not frame.is_event:
            continue
        event = parse_event(frame)
        call_id = event.get("variable_c2c_call_id")
        if call_id:
            recorder.record("H", call_id, at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observer")
    parser.add_argument("--out", required=True)
    parser.add_argument("--esl", metavar="HOST:PORT")
    parser.add_argument("--esl-password", default="ClueCon")
    args = parser.parse_args(argv)

    recorder = Recorder(args.out)
    server = StreamServer(("127.0.0.1", 0), lambda s, a: serve_callback(recorder, s, a),
                          backlog=1024)
    server.start()
    if args.esl:
        host, _, port = args.esl.rpartition(":")
        subscribed = gevent.event.Event()
        tap = gevent.spawn(tap_hangups, recorder, host, int(port), args.esl_password, subscribed)
        if not subscribed.wait(15):
            print(f"tap did not subscribe: {tap.exception!r}", file=sys.stderr, flush=True)
            return 1
    print(f"LISTENING 127.0.0.1:{server.server_port}", flush=True)

    stopping = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)

    def flusher() -> None:
        while True:
            gevent.sleep(0.2)
            recorder.flush()

    gevent.spawn(flusher)
    stopping.wait()
    server.stop(timeout=1)
    recorder.flush()
    recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
