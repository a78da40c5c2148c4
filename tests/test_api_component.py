"""The API with its background work in-process (runtime.start(): switch connection, event lease
and listener, sweeps) against the simulator over real TCP, on SQLite and MariaDB: every outcome
of the default scenario (c2c/fakeswitch/scenarios.py) is placed through the HTTP API and followed
to its settled row, the account's balance and its reservation.

Time scale 0.02: a 30 s ring timeout takes 0.6 s, a 1-minute limit 1.2 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import gevent
import pytest

from c2c.calls import listener as listener_module
from c2c.calls.routes import parse_routes
from c2c.fakeswitch.scenarios import Scenario
from c2c.store.invariants import check_invariants
from tests.support.app_harness import AppHarness
from tests.support.originate_model import parse_originate

TIME_SCALE = 0.02
CREDITS = 10
CALLER = "2125550123"
CALLEE = "2125550199"


@dataclass(frozen=True)
class Expect:
    name: str
    overrides: dict[str, str]
    answered: bool
    reason: int | None
    caller_cause: str | None
    callee_cause: str | None
    minutes: int = 0
    extra: dict[str, object] = field(default_factory=dict)  # other columns of the row


# What the default scenario does with each number (by its last four digits).
SCENARIOS = [
    Expect(
        "answered",
        {},
        True,
        None,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        1,
        {"callee_sip_status": "200"},
    ),
    Expect(
        "answered after early media",
        {"callee_phone_number": "2125550183"},
        True,
        None,
        "NORMAL_CLEARING",
        "NORMAL_CLEARING",
        1,
    ),
    Expect(
        "callee busy",
        {"callee_phone_number": "2125550486"},
        False,
        5,
        "USER_BUSY",
        "USER_BUSY",
        extra={"callee_sip_status": "486"},
    ),
    Expect(
        "caller busy",
        {"caller_phone_number": "2125550486"},
        False,
        5,
        "USER_BUSY",
        None,
        extra={"caller_sip_status": "486", "originate_error": "USER_BUSY"},
    ),
    Expect(
        "callee congestion",
        {"callee_phone_number": "2125550503"},
        False,
        8,
        "NORMAL_TEMPORARY_FAILURE",
        "NORMAL_TEMPORARY_FAILURE",
        extra={"callee_sip_status": "503"},
    ),
    Expect(
        "caller congestion",
        {"caller_phone_number": "2125550503"},
        False,
        8,
        "NORMAL_TEMPORARY_FAILURE",
        None,
        extra={"caller_sip_status": "503"},
    ),
    Expect(
        "callee rejects",
        {"callee_phone_number": "2125550603"},
        False,
        1,
        "CALL_REJECTED",
        "CALL_REJECTED",
        extra={"callee_sip_status": "603"},
    ),
    Expect(
        "caller rejects", {"caller_phone_number": "2125550603"}, False, 1, "CALL_REJECTED", None
    ),
    Expect(
        "callee invalid",
        {"callee_phone_number": "2125550404"},
        False,
        0,
        "UNALLOCATED_NUMBER",
        "UNALLOCATED_NUMBER",
        extra={"callee_sip_status": "404"},
    ),
    Expect(
        "caller invalid",
        {"caller_phone_number": "2125550404"},
        False,
        0,
        "UNALLOCATED_NUMBER",
        None,
    ),
    Expect(
        "callee never answers",
        {"callee_phone_number": "2125550408"},
        False,
        3,
        "ALLOTTED_TIMEOUT",
        "ALLOTTED_TIMEOUT",
    ),
    Expect(
        "caller never answers", {"caller_phone_number": "2125550408"}, False, 3, "NO_ANSWER", None
    ),
    Expect(
        "callee no user response (480)",
        {"callee_phone_number": "2125550480"},
        False,
        3,
        "NORMAL_CLEARING",
        "NO_USER_RESPONSE",
        extra={"callee_sip_status": "480"},
    ),
    # A failure before any channel exists: only BACKGROUND_JOB -ERR GATEWAY_DOWN.
    Expect(
        "caller gateway down",
        {"caller_phone_number": "2125550809"},
        False,
        0,
        None,
        None,
        extra={"originate_error": "GATEWAY_DOWN", "caller_answered_at": None},
    ),
    # The callee's channel never existed: its fate is on the caller's leg.
    Expect(
        "callee gateway down",
        {"callee_phone_number": "2125550809"},
        False,
        0,
        "GATEWAY_DOWN",
        None,
        extra={"callee_fate": "GATEWAY_DOWN"},
    ),
]


@pytest.fixture
def h(store_url: str) -> Iterator[AppHarness]:
    # Flood protection off: the scenario numbers are reused on purpose.
    with AppHarness(
        store_url, time_scale=TIME_SCALE, background=True, flood_seconds=0, ring_timeout=30
    ) as harness:
        yield harness


def place(h: AppHarness, api_key: str, **overrides: str) -> str:
    result = h.get(
        {
            "api_key": api_key,
            "caller_phone_number": CALLER,
            "caller_country_code": "1",
            "callee_phone_number": CALLEE,
            "callee_country_code": "1",
            **overrides,
        }
    )
    assert h.code(result) == 0
    return result.headers["x-c2c-call-id"]


def test_every_outcome_settles_with_its_row_and_balance(h):
    placed = {}
    for expect in SCENARIOS:
        account = h.account(credits=CREDITS, name=expect.name)
        placed[expect.name] = (account.id, place(h, account.api_key, **expect.overrides))
    problems = []
    for expect in SCENARIOS:
        account_id, call_id = placed[expect.name]
        call = h.wait_settled(call_id)
        got = {
            "state": call["state"],
            "answered": call["answered"],
            "minutes": call["minutes"],
            "reason": call["reason"],
            "caller_hangup_cause": call["caller_hangup_cause"],
            "callee_hangup_cause": call["callee_hangup_cause"],
            **{name: call[name] for name in expect.extra},
        }
        want = {
            "state": "ended",
            "answered": expect.answered,
            "minutes": expect.minutes,
            "reason": expect.reason,
            "caller_hangup_cause": expect.caller_cause,
            "callee_hangup_cause": expect.callee_cause,
            **expect.extra,
        }
        if got != want:
            problems.append((expect.name, got, want))
        account = h.store.accounts.find(account_id)
        if (account.credits, account.reserved) != (CREDITS - expect.minutes, 0):
            problems.append((expect.name, "balance", account.credits, account.reserved))
        if expect.answered:
            # The callee hangs up 5 s after answering; billsec is whole seconds of the
            # simulator's scaled clock (like FreeSWITCH's epoch seconds), so 5 or 6 on a quiet
            # machine; at time scale 0.02 every 20 ms of scheduling delay under load adds a
            # virtual second, so only the bounds that decide the minute are held.
            assert 5 <= call["billsec"] <= 59, (expect.name, call["billsec"])
            assert call["bridged_at"] is not None and call["ended_at"] >= call["bridged_at"]
        else:
            assert call["billsec"] in (None, 0), (expect.name, call["billsec"])
    assert problems == []
    assert h.switch.wait_idle(5)
    assert check_invariants(h.store, now=time.time()) == []


def test_the_switch_ends_a_call_at_its_limit_and_bills_exactly_the_limit(h):
    """max_duration=1 and a callee that never hangs up (0999): the sched_hangup c2c put on the
    callee's leg (execute_on_answer) ends the call, which bills 1 minute, never 2."""
    account = h.account(credits=CREDITS)
    started = time.monotonic()
    call_id = place(h, account.api_key, callee_phone_number="2125550999", max_duration="1")
    assert "execute_on_answer='sched_hangup +59 ALLOTTED_TIMEOUT'" in h.sent[-1]
    assert h.store.accounts.find(account.id).reserved == 1
    call = h.wait_settled(call_id, timeout=20)
    # ring (1 s) + answer (1 s) + the limit (59 s), at the time scale; far under the 30 s sweep
    # deadline, so the switch did it, not c2c's overdue sweep.
    assert time.monotonic() - started < 10
    assert call["answered"] is True
    assert call["callee_hangup_cause"] == "ALLOTTED_TIMEOUT"
    assert call["caller_hangup_cause"] == "NORMAL_CLEARING"
    assert call["reason"] is None
    # billsec is whole seconds of virtual time: 59, or 60 when the scaled clock's jitter rounds
    # it up; the safety second keeps it within the minute either way.
    assert 59 <= call["billsec"] <= 60
    assert call["minutes"] == 1
    account = h.store.accounts.find(account.id)
    assert (account.credits, account.reserved) == (CREDITS - 1, 0)
    assert check_invariants(h.store, now=time.time()) == []


def test_a_call_limited_by_credit_is_cut_at_the_credit(h):
    """No max_duration, one minute of credit: the reservation, and so the switch's limit, is
    one minute; the account ends at 0, never below."""
    account = h.account(credits=1)
    call_id = place(h, account.api_key, callee_phone_number="2125550999")
    assert "sched_hangup +59 ALLOTTED_TIMEOUT" in h.sent[-1]
    call = h.wait_settled(call_id, timeout=20)
    assert (call["answered"], call["minutes"], call["max_minutes"]) == (True, 1, 1)
    account = h.store.accounts.find(account.id)
    assert (account.credits, account.reserved) == (0, 0)


def test_a_call_lost_in_a_switch_shutdown_is_settled_after_the_reconnect(tmp_path):
    with AppHarness(
        f"sqlite:///{tmp_path / 'c2c.sqlite3'}",
        time_scale=TIME_SCALE,
        background=True,
        flood_seconds=0,
        lease_seconds=2,
        settle_grace=5,
    ) as h:
        # A request racing a switch shutdown gets 0 (the originate's reply is lost), yet the
        # originate never ran. No event will ever name the call: the listener looks for its
        # caller channel after QUEUED_RECHECK_SECONDS, gives a CDR the grace to explain it,
        # then settles it failed, releasing the reservation long before its deadline.
        account = h.account(credits=100)
        h.switch.stop()  # the disconnect notice is not read before the request below
        result = h.get({"api_key": account.api_key, **h.numbers()})
        code = h.code(result)
        h.switch.start()
        h.wait_listening()
        if code == 0:
            call = h.wait_settled(result.headers["x-c2c-call-id"], timeout=30)
            assert (call["answered"], call["minutes"]) == (False, 0)
        assert h.store.accounts.find(account.id).reserved == 0


# ------------------------------------------------------------------------------------------
# what the caller hears, and press 1 to connect (issue 11), through the API to the settled row


def _heard(h: AppHarness, call_id: str) -> list[tuple[str, str]]:
    """What the caller's phone heard from its answer on, as (what, value or leg role)."""
    call = h.store.calls.get(call_id)
    heard = h.switch.heard(call["caller_uuid"])
    assert heard is not None and heard["answered"]
    return [(s["heard"], s.get("value", "")) for s in heard["segments"] if s["heard"] != "silence"]


def test_the_caller_hears_ringback_or_the_callees_early_media_never_dead_air(h):
    account = h.account(credits=CREDITS)
    plain = place(h, account.api_key, max_duration="1")
    early = place(h, account.api_key, callee_phone_number="2125550305", max_duration="1")
    announced = place(h, account.api_key, callee_phone_number="2125550405", max_duration="1")
    uk_caller = place(
        h,
        account.api_key,
        caller_country_code="44",
        caller_phone_number="2071230001",
        max_duration="1",
    )
    for call_id in (plain, early, announced, uk_caller):
        h.wait_settled(call_id)
    # no early media from the callee: the caller's country's ringback (16d, 17d), then the callee
    assert _heard(h, plain) == [("ringback", "%(2000,4000,440,480)"), ("callee", "")]
    assert _heard(h, uk_caller) == [
        ("ringback", "%(400,200,400,450);%(400,2000,400,450)"),
        ("callee", ""),
    ]
    # the callee's own ringback wins over ours (17c); a carrier announcement is heard (18c)
    assert _heard(h, early) == [("early_media", ""), ("callee", "")]
    assert _heard(h, announced) == [("early_media", "")]
    call = h.store.calls.get(announced)
    assert (call["answered"], call["reason"], call["callee_hangup_cause"]) == (
        False,
        0,
        "UNALLOCATED_NUMBER",
    )
    # a 183 is no answer: the early-media call was billed from the callee's 200 OK, once
    call = h.store.calls.get(early)
    assert (call["answered"], call["minutes"]) == (True, 1)


def test_press_1_a_confirming_caller_is_bridged_a_voicemail_never_is(store_url):
    with AppHarness(
        store_url,
        time_scale=TIME_SCALE,
        background=True,
        flood_seconds=0,
        ring_timeout=30,
        confirm="key",
    ) as h:
        account = h.account(credits=CREDITS)
        person = place(h, account.api_key, max_duration="1")  # presses 1 a second after answering
        voicemail = place(h, account.api_key, caller_phone_number="2125550700", max_duration="1")
        call = h.wait_settled(person)
        assert (call["answered"], call["minutes"], call["confirm"]) == (True, 1, "confirmed")
        assert _heard(h, person) == [
            ("prompt", "tone_stream://%(500,500,440);loops=10"),
            ("ringback", "%(2000,4000,440,480)"),
            ("callee", ""),
        ]
        call = h.wait_settled(voicemail)
        assert (call["answered"], call["minutes"], call["reason"]) == (False, 0, 3)
        assert call["confirm"] == "unconfirmed"
        assert call["callee_hangup_cause"] is None  # the callee was never dialed
        assert call["caller_hangup_cause"] == "ALLOTTED_TIMEOUT"  # group_confirm_timeout (20b)
        assert _heard(h, voicemail) == [("prompt", "tone_stream://%(500,500,440);loops=10")]
        account_row = h.store.accounts.find(account.id)
        assert (account_row.credits, account_row.reserved) == (CREDITS - 1, 0)
        assert check_invariants(h.store, now=time.time()) == []


# ------------------------------------------------------------------------------------------
# routes (issue 12): each leg dialed by its own number's route, a failover list sent whole


def test_each_leg_is_originated_through_its_own_route(store_url):
    """A New York caller and a UK mobile callee, with C2C_ROUTES_FILE's 1212 (two gateways,
    failover) and 447 lines: the originate carries each leg's own templates, and the simulator,
    which dials the first target of a list, reaches each phone only through the gateway its route
    puts first (every other target is refused by the scenario, so any other would fail the call).
    The settled call is counted under each leg's route."""
    routes = parse_routes(
        [
            "1 sofia/gateway/nanp/{e164}",
            "1212 sofia/gateway/nyc/{e164}|sofia/gateway/nanp/{e164}",
            "44 sofia/gateway/uk/{e164}",
            "447 sofia/gateway/uk_mobile/00{country_code}{number}",
        ]
    )
    only_through_the_route = Scenario.from_dict(
        {
            "rules": [
                {
                    "dial_string": r"^sofia/gateway/nyc/\+12125550123$",
                    "role": "caller",
                    "action": "answer",
                    "answer_after": 1,
                    "hangup_after": 5,
                },
                {
                    "dial_string": "^sofia/gateway/uk_mobile/00447700900123$",
                    "role": "callee",
                    "action": "answer",
                    "answer_after": 1,
                    "hangup_after": 5,
                },
                {"action": "reject"},
            ]
        }
    )
    with AppHarness(
        store_url,
        time_scale=TIME_SCALE,
        background=True,
        flood_seconds=0,
        scenario=only_through_the_route,
        routes=routes,
        dial_string="sofia/gateway/world/{e164}",
    ) as h:
        account = h.account(credits=CREDITS)
        call_id = place(
            h,
            account.api_key,
            caller_phone_number="2125550123",
            callee_country_code="44",
            callee_phone_number="7700900123",
        )
        command = next(sent for sent in h.sent if f"c2c_call_id={call_id}" in sent)
        a_vars, a_target, b_vars, b_target = parse_originate(command)
        assert a_target == "sofia/gateway/nyc/+12125550123|sofia/gateway/nanp/+12125550123"
        assert a_vars["fail_on_single_reject"] == "!GATEWAY_DOWN:INVALID_GATEWAY"
        assert b_target == "sofia/gateway/uk_mobile/00447700900123"
        assert "fail_on_single_reject" not in b_vars
        call = h.wait_settled(call_id)
        assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None)
        metrics = h.request("GET", "/metrics").text
        for line in (
            'c2c_calls_settled_by_route_total{leg="caller",outcome="answered",route="1212"} 1.0',
            'c2c_calls_settled_by_route_total{leg="callee",outcome="answered",route="447"} 1.0',
        ):
            assert line in metrics, line
        assert check_invariants(h.store, now=time.time()) == []


# ------------------------------------------------------------------------------------------
# a switch that refuses the originate before any leg exists (issue 12; two switches:
# tests/test_originate_retry.py)

REFUSE_EVERY_CALLER = Scenario.from_dict(
    {"rules": [{"role": "caller", "action": "fail", "cause": "DESTINATION_OUT_OF_ORDER"}]}
)


@pytest.fixture
def short_hold(monkeypatch) -> float:
    """The event holder keeps a refusal back 3 s (it may be moving); tests need not wait that."""
    monkeypatch.setattr(listener_module, "HOLD_SECONDS", 0.3)
    return 0.3


def test_a_refusal_by_the_only_switch_answers_11_and_leaves_nothing(store_url, short_hold):
    """Paused, over its sessions-per-second or full (recordings 22-23b): no other switch to
    send the call to, so the accept is undone. The switch's event holder, which hears the same
    -ERR, finds no call once it has held the refusal back."""
    with AppHarness(
        store_url, time_scale=TIME_SCALE, background=True, scenario=REFUSE_EVERY_CALLER
    ) as h:
        key = h.account(credits=CREDITS).api_key
        before = h.snapshot()
        assert h.place(key) == 11
        gevent.sleep(2 * short_hold)
        assert h.snapshot() == before
        assert len(h.sent) == 1  # sent once; there is no other switch
        h.switch.api_command("fsctl pause")
        assert h.place(key, **h.numbers()) == 11
        assert h.snapshot() == before


def test_without_the_wait_a_refused_call_is_accepted_and_settles_failed(store_url, short_hold):
    """C2C_ORIGINATE_VERDICT_SECONDS=0: as before the retry, the request answers 0 at the
    switch's +OK Job-UUID, and the event holder settles the refused call as failed once it has
    held the refusal back (nobody moved it)."""
    with AppHarness(
        store_url,
        time_scale=TIME_SCALE,
        background=True,
        scenario=REFUSE_EVERY_CALLER,
        originate_verdict_seconds=0,
    ) as h:
        assert h.connection.tag is None and h.connection.events == ()
        call_id = place(h, h.account(credits=CREDITS).api_key)
        call = h.wait_settled(call_id)
        assert (call["answered"], call["reason"], call["originate_error"]) == (
            False,
            0,
            "DESTINATION_OUT_OF_ORDER",
        )
        assert check_invariants(h.store, now=time.time()) == []
