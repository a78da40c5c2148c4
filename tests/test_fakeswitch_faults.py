"""Misbehaviour on demand (faults.py), and the switch going away (stop, restart)."""

from __future__ import annotations

import time

import gevent
import pytest

from c2c.esl.protocol import FrameParser
from c2c.fakeswitch.faults import Faults
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import RawClient

SHUTDOWN = b"The system is being shut down.\n"


@pytest.fixture
def switch():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0.01).start()
    yield fake
    fake.stop()


def test_close_mid_frame(switch):
    switch.faults.close_mid_frame = True
    raw = RawClient(switch.port)
    raw.login()  # the auth reply itself is whole
    raw.send("api status")
    assert raw.wait_closed()
    parser = FrameParser()
    frames = parser.feed(bytes(raw.raw))
    assert [f.content_type for f in frames] == ["auth/request", "command/reply"]
    assert parser.buffered > 0  # half a frame, never finished


def test_stall_reads_commands_but_never_answers(switch):
    switch.faults.stall = True
    raw = RawClient(switch.port)
    raw.login()
    raw.send("api status")
    raw.send("event plain ALL")
    gevent.sleep(0.3)
    assert raw.frames == [] and not raw.closed
    switch.faults.stall = False
    raw.send("api uuid_exists x")
    assert raw.wait_frames(1)[0].body == b"false"
    raw.close()


def test_error_all(switch):
    switch.faults.error_all = True
    raw = RawClient(switch.port)
    raw.login()
    assert raw.command("api status").body == b"-ERR simulated failure\n"
    assert raw.command("bgapi status").reply_text == "-ERR simulated failure"
    assert raw.command("event plain ALL").reply_text == "-ERR simulated failure"
    raw.close()


def test_drop_every_n_seconds():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", faults=Faults(drop_every=0.2)).start()
    try:
        first = RawClient(fake.port)
        first.login()
        started = time.monotonic()
        assert first.wait_closed(timeout=2)
        assert 0.1 < time.monotonic() - started < 1.0
        assert not any(f.content_type == "text/disconnect-notice" for f in first.frames)
        second = RawClient(fake.port)  # still accepting
        second.login()
        assert second.wait_closed(timeout=2)
    finally:
        fake.stop()


def test_stop_ends_calls_and_says_so():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0.01).start()
    raw = RawClient(fake.port)
    raw.login()
    raw.command("event plain CHANNEL_HANGUP_COMPLETE SHUTDOWN")
    uuid = "dddddddd-0000-4000-8000-000000000001"
    reply = raw.command(
        f"api originate {{origination_uuid={uuid}}}sofia/gateway/gw1/+15550000999 &park"
    )
    assert reply.body == f"+OK {uuid}\n".encode()
    fake.stop()
    assert raw.wait_closed()
    events = raw.events()
    assert [e.name for e in events] == ["SHUTDOWN", "CHANNEL_HANGUP_COMPLETE"]
    assert events[1].get("Hangup-Cause") == "SYSTEM_SHUTDOWN"
    assert raw.frames[-1].content_type == "text/disconnect-notice"
    assert raw.frames[-1].body == SHUTDOWN


def test_restart_forgets_calls_and_comes_back_on_the_same_port(switch):
    port = switch.port
    raw = RawClient(port)
    raw.login()
    core_before = switch.identity.core_uuid
    switch.api_command("originate sofia/gateway/gw1/+15550000999 &park")
    assert switch.channels
    switch.restart(downtime=0.2)
    assert raw.wait_closed()
    assert raw.frames[-1].body == SHUTDOWN
    assert switch.port == port and switch.channels == {}
    assert switch.identity.core_uuid != core_before
    again = RawClient(port)
    again.login()
    assert again.command("api show channels as json").body == b'{"row_count": 0}\n'
    again.close()


def test_connection_refused_while_down(switch):
    port = switch.port
    switch.stop()
    with pytest.raises(OSError):
        RawClient(port, timeout=1)
    switch.start()
    RawClient(port).login()


def test_faults_from_the_constructor():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", faults=Faults(error_all=True)).start()
    try:
        raw = RawClient(fake.port)
        raw.login()
        assert raw.command("api status").body.startswith(b"-ERR")
        raw.close()
    finally:
        fake.stop()
