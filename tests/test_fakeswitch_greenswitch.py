"""greenswitch's own stock InboundESL, unchanged, as a client of the simulator."""

from __future__ import annotations

import gevent.event
import greenswitch
import pytest

from c2c.fakeswitch.server import FakeSwitch

A = "aaaaaaaa-1111-4000-8000-000000000001"
B = "bbbbbbbb-1111-4000-8000-000000000001"


@pytest.fixture
def switch():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0.01).start()
    yield fake
    fake.stop()


def test_greenswitch_inbound_esl(switch):
    esl = greenswitch.InboundESL(host="127.0.0.1", port=switch.port, password="ClueCon")
    esl.connect()
    try:
        status = esl.send("api status")
        assert "is ready" in status.data
        seen: list[tuple[str, str | None]] = []
        hung_up = gevent.event.Event()
        jobs: list[str] = []

        def on_event(event):
            seen.append((event.headers["Event-Name"], event.headers.get("Unique-ID")))
            if event.headers["Event-Name"] == "CHANNEL_HANGUP_COMPLETE" and (
                event.headers.get("Unique-ID") == A
            ):
                hung_up.set()

        def on_job(event):
            jobs.append(event.headers.get("Job-UUID"))

        for name in (
            "CHANNEL_CREATE",
            "CHANNEL_ANSWER",
            "CHANNEL_BRIDGE",
            "CHANNEL_HANGUP_COMPLETE",
        ):
            esl.register_handle(name, on_event)
        esl.register_handle("BACKGROUND_JOB", on_job)
        reply = esl.send(
            "event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE "
            "CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"
        )
        assert reply.data == "+OK event listener enabled plain"
        reply = esl.send(
            f"bgapi originate {{origination_uuid={A},ignore_early_media=true}}"
            f"sofia/gateway/gw1/+15551230001 &bridge({{origination_uuid={B}}}"
            "sofia/gateway/gw1/+15551230002)"
        )
        job = reply.headers["Job-UUID"]
        assert reply.data == f"+OK Job-UUID: {job}"
        assert hung_up.wait(timeout=5)
        gevent.sleep(0.05)
        assert jobs == [job]
        assert ("CHANNEL_BRIDGE", A) in seen
        assert ("CHANNEL_HANGUP_COMPLETE", B) in seen
        assert esl.send(f"api uuid_exists {A}").data == "false"
    finally:
        esl.stop()
