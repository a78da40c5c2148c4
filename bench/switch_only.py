"""The end-to-end baseline: calls through the simulator alone, no c2c, no database.

    python -m bench.switch_only --port PORT --password PW --seconds 5 [--window 200]

A minimal Event Socket client sends the same ``bgapi originate`` c2c would send (built by
c2c.calls.originate.build_originate), keeping up to ``window`` calls in flight, and counts a call
done when both legs' CHANNEL_HANGUP_COMPLETE arrived. The rate is what the switch (simulator)
side can do on this machine; c2c's end-to-end rate is reported as a ratio to it.
Prints ``{"calls": N, "seconds": S}``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.lock  # noqa: E402

from c2c.calls.originate import OriginateSpec, build_originate  # noqa: E402
from c2c.esl.protocol import FrameParser, encode_command, parse_event  # noqa: E402
from c2c.numbers import PhoneNumber  # noqa: E402

DIAL = "sofia/gateway/default/+{country_code}{number}"


class Session:
    def __init__(self, port: int, password: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.parser = FrameParser()
        self.pending: list = []
        self.frame()  # auth/request
        self.sock.sendall(encode_command(f"auth {password}"))
        if not (self.frame().reply_text or "").startswith("+OK"):
            raise RuntimeError("auth refused")

    def frame(self):  # noqa: ANN201
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.switch_only")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", default="ClueCon")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args(argv)

    events = Session(args.port, args.password)
    events.sock.sendall(encode_command("event plain CHANNEL_HANGUP_COMPLETE"))
    events.frame()
    commands = Session(args.port, args.password)

    legs_gone: dict[str, int] = {}
    done = [0]
    room = gevent.lock.BoundedSemaphore(args.window)
    stop = gevent.event.Event()

    def read_events() -> None:
        events.sock.settimeout(None)
        while True:
            frame = events.frame()
            if not frame.is_event:
                continue
            call_id = parse_event(frame).get("variable_c2c_call_id")
            if not call_id:
                continue
            legs_gone[call_id] = legs_gone.get(call_id, 0) + 1
            if legs_gone[call_id] == 2:
                del legs_gone[call_id]
                done[0] += 1
                room.release()

    def read_replies() -> None:
        commands.sock.settimeout(None)
        while True:
            commands.frame()

    gevent.spawn(read_events)
    gevent.spawn(read_replies)
    started = time.monotonic()
    deadline = started + args.seconds
    sent = 0
    while time.monotonic() < deadline:
        if not room.acquire(timeout=0.5):
            continue
        sent += 1
        spec = OriginateSpec(
            call_id=str(uuid.uuid4()), caller=PhoneNumber("1", str(2_000_000_000 + sent)),
            callee=PhoneNumber("1", str(2_200_000_000 + sent)), caller_uuid=str(uuid.uuid4()),
            callee_uuid=str(uuid.uuid4()), caller_id_for_callee=str(2_000_000_000 + sent),
            caller_id_for_caller=str(2_200_000_000 + sent), ring_timeout=30,
            time_limit_seconds=7200)
        commands.sock.sendall(encode_command(f"bgapi {build_originate(spec, DIAL)}",
                                             [("Job-UUID", str(uuid.uuid4()))]))
    seconds = time.monotonic() - started
    stop.set()
    print(json.dumps({"calls": done[0], "seconds": seconds, "sent": sent}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
