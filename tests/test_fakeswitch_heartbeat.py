"""HEARTBEAT: every interval of the switch's uptime, with recording 21's headers and the
limits' figures, through a subscription and its filters; the interval changed while running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from c2c.esl.protocol import Event, parse_event
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import RawClient, load_recording


@pytest.fixture
def switches() -> Iterator[list[FakeSwitch]]:
    started: list[FakeSwitch] = []
    yield started
    for switch in started:
        switch.stop()


def heartbeats(client: RawClient) -> list[Event]:
    return [e for e in client.events() if e.name == "HEARTBEAT"]


def recorded_heartbeats() -> list[Event]:
    recording = load_recording("21_heartbeat_only_45s")
    return [parse_event(f) for f in recording.frames if f.is_event]


def test_headers_as_recording_21(switches):
    switch = FakeSwitch(time_scale=0.01, heartbeat=5.0, max_sessions=4000, sps=1000).start()
    switches.append(switch)
    client = RawClient(switch.port)
    client.login()
    assert client.command("event plain HEARTBEAT").reply_text == (
        "+OK event listener enabled plain"
    )
    assert client.wait_for(lambda: len(heartbeats(client)) >= 2)
    first, second = heartbeats(client)[:2]
    recorded = recorded_heartbeats()[0]
    assert [name for name, _ in first.headers] == [name for name, _ in recorded.headers]
    same = (
        "Event-Name",
        "Event-Calling-File",
        "Event-Calling-Function",
        "Event-Calling-Line-Number",
        "Event-Info",
        "FreeSWITCH-Version",
        "Max-Sessions",
        "Session-Per-Sec",
    )
    assert {n: first.get(n) for n in same} == {n: recorded.get(n) for n in same}
    assert first.body is None
    assert first.get("Up-Time").startswith("0 years, 0 days, 0 hours, 0 minutes, ")
    assert first.get("Idle-CPU") == "98.000000"
    assert (first.get("Session-Count"), first.get("Session-Since-Startup")) == ("0", "0")
    # each at its own multiple of 5 s of uptime, in order
    marks = [int(e.get("Uptime-msec")) // 5000 for e in (first, second)]
    assert marks[0] >= 1 and marks[1] > marks[0]
    assert int(second.get("Event-Sequence")) > int(first.get("Event-Sequence"))
    client.close()


def test_at_multiples_of_the_uptime_not_of_the_subscription(switches):
    """21: the events came at 15.9 s and 35.9 s of the subscription, at 20 s and 40 s of the
    switch's uptime."""
    switch = FakeSwitch(time_scale=1.0, heartbeat=1.0).start()
    switches.append(switch)
    client = RawClient(switch.port)
    client.login()
    assert client.wait_for(lambda: switch.uptime_us() >= 400_000)
    subscribed_at = switch.uptime_us() // 1000
    client.command("event plain HEARTBEAT")
    assert client.wait_for(lambda: heartbeats(client), timeout=3)
    uptime = int(heartbeats(client)[0].get("Uptime-msec"))
    assert 1000 <= uptime < subscribed_at + 1000  # the next whole second, not a second on
    client.close()


def test_a_heartbeat_carries_the_load_and_passes_the_c2c_filters(switches):
    switch = FakeSwitch(time_scale=0.01, heartbeat=2.0, max_sessions=40, sps=30).start()
    switches.append(switch)
    a = "aaaaaaaa-0000-4000-8000-0000000000a1"
    assert (
        switch.api_command(f"originate {{origination_uuid={a}}}sofia/gateway/gw/15550000999 &park")
        == f"+OK {a}\n"
    )
    switch.api_command("fsctl max_sessions 50")
    client = RawClient(switch.port)
    client.login()
    recording = load_recording("22_fsctl_pause_originate_resume")
    for send in recording.sends[1:5]:  # c2c's subscription and filters
        client.command(send.data.decode().strip())
    assert client.wait_for(lambda: heartbeats(client))
    beat = heartbeats(client)[0]
    assert (beat.get("Session-Count"), beat.get("Max-Sessions")) == ("1", "50")
    assert beat.get("Session-Since-Startup") == "1"
    assert beat.get("Session-Peak-Max") == "1"
    assert beat.get("Session-Per-Sec") in {"29", "30"}  # this second's budget left
    client.close()
    switch.switchboard.hupall("MANAGER_REQUEST")


def test_the_interval_may_be_set_changed_and_cleared_while_running(switches):
    switch = FakeSwitch(time_scale=1.0, heartbeat=None).start()
    switches.append(switch)
    client = RawClient(switch.port)
    client.login()
    client.command("event plain HEARTBEAT")
    switch.heartbeat_interval = 0.05
    assert client.wait_for(lambda: len(heartbeats(client)) >= 3)
    switch.heartbeat_interval = 0  # off
    count = len(heartbeats(client))
    assert not client.wait_for(lambda: len(heartbeats(client)) > count + 1, timeout=0.5)
    switch.heartbeat_interval = 0.1
    assert client.wait_for(lambda: len(heartbeats(client)) >= count + 3)
    client.close()


def test_a_restart_starts_the_uptime_again(switches):
    switch = FakeSwitch(time_scale=1.0, heartbeat=None).start()
    switches.append(switch)
    client = RawClient(switch.port)
    assert client.wait_for(lambda: switch.uptime_us() >= 300_000)
    client.close()
    switch.restart()
    assert switch.uptime_us() < 300_000
    assert "0 minutes, 0 seconds" in switch.api_command("status").splitlines()[0]
