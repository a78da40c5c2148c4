"""A frozen host (faults.frozen, --fault-freeze-after/-for, SIGUSR1): every connection open and
silent, new ones accepted and not greeted, the calls going on, everything delivered in order
once thawed."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest
from gevent import subprocess

from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import RawClient, read_line
from tests.fixtures.fakeswitch.helpers import start_simulator as start_process
from tests.fixtures.fakeswitch.helpers import stop_simulator as stop

QUIET = 0.3  # how long "nothing comes" is watched for


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    fake = FakeSwitch(time_scale=0.01, heartbeat=5.0).start()  # a HEARTBEAT every 0.05 s
    yield fake
    fake.stop()


def heartbeat_count(client: RawClient) -> int:
    return len([e for e in client.events() if e.name == "HEARTBEAT"])


def test_frozen_connections_stay_open_and_silent_then_get_everything_in_order(switch):
    client = RawClient(switch.port)
    client.login()
    client.command("event plain HEARTBEAT CHANNEL_HANGUP_COMPLETE")
    assert client.wait_for(lambda: heartbeat_count(client) >= 1)
    switch.faults.frozen = True
    assert switch.faults.active
    seen = len(client.frames)
    client.send("api status")
    late = RawClient(switch.port)  # accepted by the kernel, never greeted
    assert not client.wait_for(lambda: len(client.frames) > seen + 1, timeout=QUIET)
    assert len(client.frames) <= seen + 1  # at most one heartbeat already on its way
    assert late.frames == [] and not late.closed and not client.closed
    # the switch itself goes on: a call placed in-process rings, answers and ends
    uuid = "aaaaaaaa-0000-4000-8000-00000000f001"
    assert (
        switch.api_command(
            f"originate {{origination_uuid={uuid}}}sofia/gateway/gw/15550000999 &park"
        )
        == f"+OK {uuid}\n"
    )
    assert switch.api_command(f"uuid_kill {uuid}") == "+OK\n"
    assert switch.wait_idle(timeout=5)
    switch.faults.frozen = False
    assert client.wait_for(lambda: any(f.content_type == "api/response" for f in client.frames))
    assert client.wait_for(
        lambda: any(e.name == "CHANNEL_HANGUP_COMPLETE" for e in client.events())
    )
    marks = [int(e.get("Uptime-msec")) for e in client.events() if e.name == "HEARTBEAT"]
    assert marks == sorted(marks) and len(marks) > 2  # the queued ones too, in order
    late.login()  # greeted now
    late.close()
    client.close()


def test_a_client_that_gives_up_while_frozen_is_closed_quietly(switch):
    client = RawClient(switch.port)
    client.login()
    assert switch.wait_for(lambda: len(switch.sessions) == 1)
    switch.faults.frozen = True
    client.send("api status")
    client.close()
    assert switch.wait_for(lambda: not switch.sessions)
    switch.faults.frozen = False


def test_stop_while_frozen_closes_without_a_word(switch):
    client = RawClient(switch.port)
    client.login()
    switch.faults.frozen = True
    seen = len(client.frames)
    switch.stop()
    assert client.wait_closed()
    assert not any(f.content_type == "text/disconnect-notice" for f in client.frames[seen:])
    switch.faults.frozen = False
    switch.start()  # the fixture stops it again


# -- as a process ----------------------------------------------------------------------------


def test_sigusr1_freezes_and_thaws_a_process():
    process, port = start_process("--heartbeat-interval", "0.05")
    try:
        client = RawClient(port)
        client.login()
        client.command("event plain HEARTBEAT")
        assert client.wait_for(lambda: heartbeat_count(client) >= 1)
        process.send_signal(signal.SIGUSR1)
        assert read_line(process) == "FROZEN"
        client.send("api fsctl pause_check")
        seen = len(client.frames)
        assert not client.wait_for(lambda: len(client.frames) > seen + 1, timeout=QUIET)
        process.send_signal(signal.SIGUSR1)
        assert read_line(process) == "THAWED"
        assert client.wait_for(
            lambda: any(
                f.body == b"false" for f in client.frames if f.content_type == "api/response"
            )
        )
        client.close()
    finally:
        stop(process)


def test_a_process_frozen_from_the_start_greets_no_one_until_it_thaws():
    process, port = start_process("--fault-freeze-after", "0")
    try:
        assert read_line(process) == "FROZEN"
        client = RawClient(port)  # the connection is made: the kernel accepts it
        assert not client.wait_for(lambda: client.frames or client.closed, timeout=QUIET)
        process.send_signal(signal.SIGUSR1)
        assert read_line(process) == "THAWED"
        client.login()
        assert client.command("api fsctl ready_check").body == b"true"
        client.close()
    finally:
        stop(process)


def test_a_scheduled_freeze_ends_by_itself():
    process, port = start_process("--fault-freeze-after", "0.1", "--fault-freeze-for", "0.2")
    try:
        assert [read_line(process), read_line(process)] == ["FROZEN", "THAWED"]
        client = RawClient(port)
        client.login()
        client.close()
    finally:
        stop(process)


def test_freeze_for_needs_freeze_after():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2c.fakeswitch",
            "--listen",
            "127.0.0.1:0",
            "--fault-freeze-for",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "--fault-freeze-for needs --fault-freeze-after" in result.stderr
