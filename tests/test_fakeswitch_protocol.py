"""The Event Socket side of the simulator over real TCP: auth, ACL, commands, subscriptions,
filters, bgapi and BACKGROUND_JOB, exit, with the replies worded as FreeSWITCH words them."""

from __future__ import annotations

import gevent
import pytest

from c2c.esl.protocol import parse_event
from c2c.fakeswitch import session as session_module
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import RawClient

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

# Every leg answers at once and hangs up 1 s later; ...0999 never hangs up.
QUICK = Scenario.from_dict(
    {
        "rules": [
            {"suffix": "0999", "action": "answer", "answer_after": 0, "hangup_after": None},
            {"action": "answer", "answer_after": 0, "hangup_after": 1},
        ]
    }
)


@pytest.fixture
def switch():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=QUICK, time_scale=0.01).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(switch):
    raw = RawClient(switch.port)
    raw.login()
    yield raw
    raw.close()


def originate(
    uuid: str,
    number: str = "15551230001",
    call_id: str | None = None,
    bridge: str | None = "15551230002",
) -> str:
    extra = f",c2c_call_id={call_id}" if call_id else ""
    a = f"{{origination_uuid={uuid},ignore_early_media=true{extra}}}sofia/gateway/gw1/+{number}"
    if bridge is None:
        return f"originate {a} &park"
    return f"originate {a} &bridge({{c2c_call_id={call_id}}}sofia/gateway/gw1/+{bridge})"


# ------------------------------------------------------------------------------------------
# connection life


def test_greeting_then_wrong_password_closes(switch):
    raw = RawClient(switch.port)
    raw.wait_frames(1)
    raw.send("auth nope")
    frames = raw.wait_frames(3)
    assert frames[0].content_type == "auth/request"
    assert frames[1].reply_text == "-ERR invalid"
    assert frames[2].content_type == "text/disconnect-notice" and frames[2].body == GOODBYE
    assert raw.wait_closed()


def test_commands_before_auth_are_not_found_but_auth_still_works(switch):
    raw = RawClient(switch.port)
    raw.wait_frames(1)
    assert raw.command("api status").reply_text == "-ERR command not found"
    assert raw.command("event plain ALL").reply_text == "-ERR command not found"
    assert raw.command("auth ClueCon").reply_text == "+OK accepted"
    assert raw.command("api status").content_type == "api/response"
    raw.close()


def test_exit_says_bye_then_goodbye_and_closes(client):
    client.send("exit")
    frames = client.wait_frames(2)
    assert frames[0].reply_text == "+OK bye"
    assert frames[1].body == GOODBYE
    assert client.wait_closed()


def test_exit_works_before_auth(switch):
    raw = RawClient(switch.port)
    raw.wait_frames(1)
    raw.send("exit")
    assert [f.content_type for f in raw.wait_frames(3)][1:] == [
        "command/reply",
        "text/disconnect-notice",
    ]
    assert raw.wait_closed()


def test_first_command_must_come_in_time(switch, monkeypatch):
    monkeypatch.setattr(session_module, "AUTH_TIMEOUT", 0.2)
    raw = RawClient(switch.port)
    frames = raw.wait_frames(2, timeout=3)
    assert frames[1].content_type == "text/disconnect-notice"
    assert raw.wait_closed()


def test_acl_rejects_peer_rudely():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", acl="10.0.0.0/8,192.168.0.0/16").start()
    try:
        raw = RawClient(fake.port)
        frames = raw.wait_frames(2)
        assert frames[0].content_type == "text/rude-rejection"
        assert frames[0].body == b"Access Denied, go away.\n"
        assert frames[1].content_type == "text/disconnect-notice"
        assert raw.wait_closed()
    finally:
        fake.stop()


def test_acl_admits_listed_networks():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", acl="10.0.0.0/8,127.0.0.0/8").start()
    try:
        raw = RawClient(fake.port)
        raw.login()
        raw.close()
    finally:
        fake.stop()


def test_several_clients_at_once(switch):
    clients = [RawClient(switch.port) for _ in range(5)]
    for raw in clients:
        raw.login()
    replies = [raw.command("api uuid_exists nothing") for raw in clients]
    assert all(reply.body == b"false" for reply in replies)
    for raw in clients:
        raw.close()


# ------------------------------------------------------------------------------------------
# commands


def test_unknown_command_and_unknown_api(client):
    assert client.command("no_such_esl_command").reply_text == "-ERR command not found"
    reply = client.command("api no_such_command foo")
    assert reply.body == b"-ERR no_such_command Command not found!\n"


def test_session_commands_are_refused_inbound(client):
    assert client.command("linger 3").reply_text == "-ERR not controlling a session"
    assert client.command("nolinger").reply_text == "-ERR not controlling a session"


def test_api_originate_blocks_events_until_it_returns(client):
    client.command("event plain CHANNEL_CREATE CHANNEL_ANSWER")
    reply = client.command(
        "api " + originate("a0000000-0000-4000-8000-000000000001", "15550000999", bridge=None)
    )
    assert reply.body == b"+OK a0000000-0000-4000-8000-000000000001\n"
    # The reply was written before the events queued while the api ran.
    names = [parse_event(f).name for f in client.wait_frames(2)]
    assert names == ["CHANNEL_CREATE", "CHANNEL_ANSWER"]


def test_bgapi_honours_job_uuid_and_broadcasts_the_result(switch, client):
    other = RawClient(switch.port)
    other.login()
    other.command("event plain BACKGROUND_JOB")
    deaf = RawClient(switch.port)
    deaf.login()
    client.command("event json BACKGROUND_JOB")
    job = "11111111-2222-3333-4444-555555555555"
    reply = client.command("bgapi status", [("Job-UUID", job)])
    assert reply.headers == [
        ("Content-Type", "command/reply"),
        ("Reply-Text", f"+OK Job-UUID: {job}"),
        ("Job-UUID", job),
    ]
    for raw in (client, other):
        event = raw.wait_event(lambda e: e.name == "BACKGROUND_JOB")
        assert event.get("Job-UUID") == job
        assert event.get("Job-Command") == "status"
        assert event.get("Job-Command-Arg") is None  # empty headers are dropped
        assert event.body.startswith("UP ")
    assert client.frames[-1].content_type == "text/event-json"
    gevent.sleep(0.05)
    assert not deaf.events()
    other.close()
    deaf.close()


def test_bgapi_without_job_uuid_gets_one(client):
    reply = client.command("bgapi uuid_exists x")
    job = reply.get("Job-UUID")
    assert job and reply.reply_text == f"+OK Job-UUID: {job}"


def test_originate_usage(client):
    assert client.command("api originate").body.startswith(b"-USAGE: <call url> <exten>")


# ------------------------------------------------------------------------------------------
# subscriptions


def test_event_replies(client):
    assert client.command("event plain channel_create").reply_text == (
        "+OK event listener enabled plain"
    )
    assert client.command("event json ALL").reply_text == "+OK event listener enabled json"
    assert client.command("event xml SWITCH_EVENT_HEARTBEAT").reply_text == (
        "+OK event listener enabled xml"
    )
    assert client.command("event plain NOT_AN_EVENT").reply_text == "-ERR no keywords supplied"
    assert client.command("nixevent BACKGROUND_JOB").reply_text == "+OK events nixed"
    assert client.command("noevents").reply_text == "+OK no longer listening for events"
    assert client.command("noevents").reply_text == "-ERR not listening for events"


def test_event_names_are_case_insensitive_and_nixevent_works(client):
    client.command("event plain channel_create background_job")
    client.command("nixevent CHANNEL_CREATE")
    client.command("bgapi " + originate("a0000000-0000-4000-8000-000000000002", bridge=None))
    event = client.wait_event(lambda e: e.name == "BACKGROUND_JOB")
    assert event.body == "+OK a0000000-0000-4000-8000-000000000002\n"
    assert [e.name for e in client.events()] == ["BACKGROUND_JOB"]


def test_all_includes_the_extra_channel_events(client):
    client.command("event plain ALL")
    client.command(
        "api " + originate("a0000000-0000-4000-8000-000000000003", "15550000999", bridge=None)
    )
    client.command("api uuid_kill a0000000-0000-4000-8000-000000000003")
    client.wait_event(lambda e: e.name == "CHANNEL_DESTROY")
    names = [e.name for e in client.events()]
    for name in (
        "API",
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_CALLSTATE",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
    ):
        assert name in names
    sequence = [int(e.get("Event-Sequence")) for e in client.events()]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert len({e.get("Core-UUID") for e in client.events()}) == 1


def test_xml_events(client):
    client.command("event xml BACKGROUND_JOB")
    client.command("bgapi uuid_exists nothing")
    client.wait_frames(1)
    frame = client.frames[0]
    assert frame.content_type == "text/event-xml"
    event = parse_event(frame)
    assert event.name == "BACKGROUND_JOB" and event.body == "false"


# ------------------------------------------------------------------------------------------
# filters (reference 1.6, recordings 10/10b)


def _calls_seen(client, call_ids: list[str], wait_for: str) -> list[tuple[str, str | None]]:
    for index, call_id in enumerate(call_ids):
        uuid = f"f0000000-0000-4000-8000-{index:012d}"
        client.command("bgapi " + originate(uuid, call_id=call_id))
    gevent.sleep(0.3)  # every call is over in about 0.02 s
    return [(e.name, e.get("variable_c2c_call_id")) for e in client.events()]


def test_regex_filter_drops_other_calls_and_background_job(client):
    client.command("event plain CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
    reply = client.command("filter variable_c2c_call_id /^c2c-abc/")
    assert reply.reply_text == "+OK filter added. [variable_c2c_call_id]=[/^c2c-abc/]"
    seen = _calls_seen(client, ["c2c-abc-1", "zzz-2"], "")
    assert {call_id for _, call_id in seen} == {"c2c-abc-1"}
    assert "BACKGROUND_JOB" not in {name for name, _ in seen}
    assert len(seen) == 4  # CREATE and HANGUP_COMPLETE of both legs


def test_event_name_filter_lets_background_job_through(client):
    client.command("event plain CHANNEL_CREATE BACKGROUND_JOB")
    client.command("filter variable_c2c_call_id /^c2c-abc/")
    reply = client.command("filter Event-Name BACKGROUND_JOB")
    assert reply.reply_text == "+OK filter added. [Event-Name]=[BACKGROUND_JOB]"
    seen = _calls_seen(client, ["c2c-abc-3"], "")
    assert sorted(name for name, _ in seen) == [
        "BACKGROUND_JOB",
        "CHANNEL_CREATE",
        "CHANNEL_CREATE",
    ]


def test_regex_filters_are_case_sensitive_unless_i(client):
    client.command("event plain CHANNEL_CREATE")
    client.command("filter variable_c2c_call_id /^C2C-ABC/")
    assert _calls_seen(client, ["c2c-abc-8"], "") == []
    client.command("filter variable_c2c_call_id /^C2C-ABC/i")
    client.frames.clear()
    client.command(
        "bgapi " + originate("f1000000-0000-4000-8000-000000000001", call_id="c2c-abc-9")
    )
    gevent.sleep(0.2)
    assert [e.get("variable_c2c_call_id") for e in client.events()] == ["c2c-abc-9"] * 2


def test_plain_filter_values_are_case_insensitive_exact(client):
    client.command("event plain CHANNEL_CREATE")
    client.command("filter variable_c2c_call_id C2C-LIT-4")
    client.command("filter variable_c2c_call_id .+")  # no slashes: a literal, matches nothing
    seen = _calls_seen(client, ["c2c-lit-4", "c2c-lit-5", "c2c-lit-44"], "")
    assert {call_id for _, call_id in seen} == {"c2c-lit-4"}


def test_unique_id_filter_and_deleting_filters(client):
    client.command("event plain CHANNEL_CREATE")
    uuid = "f2000000-0000-4000-8000-000000000001"
    client.command(f"filter Unique-ID {uuid}")
    client.command("bgapi " + originate(uuid, call_id="c2c-def-6"))
    gevent.sleep(0.2)
    assert [e.unique_id for e in client.events()] == [uuid]
    reply = client.command(f"filter delete Unique-ID {uuid}")
    assert reply.reply_text == f"+OK filter deleted. [Unique-ID][{uuid}]"
    assert client.command("filter delete all").reply_text == "+OK filter deleted. [all][]"
    assert client.command("filter bogus_no_value").reply_text == "-ERR invalid syntax"
    assert client.command("filter delete").reply_text == "-ERR invalid syntax"
    client.frames.clear()
    client.command("bgapi " + originate("f2000000-0000-4000-8000-000000000002", call_id="x"))
    gevent.sleep(0.2)
    assert len(client.events()) == 2  # no filter left: both legs' CREATE


def test_heartbeat_is_scaled():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0.005).start()  # every 0.1 s
    try:
        raw = RawClient(fake.port)
        raw.login()
        raw.command("event plain HEARTBEAT")
        heartbeat = raw.wait_event(lambda e: e.name == "HEARTBEAT", timeout=3)
        assert heartbeat.get("Event-Info") == "System Ready"
        assert heartbeat.get("Session-Count") == "0"
        raw.close()
    finally:
        fake.stop()
