"""The choice among switches (c2c.esl.choice) and what a worker keeps about each switch
(c2c.esl.health): pure, no sockets."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2c.domain.switch_state import SwitchLoad, SwitchRecord
from c2c.esl.choice import (
    SwitchView,
    avoidance,
    choose,
    describe_refusals,
    refusal,
)
from c2c.esl.health import SwitchHealth

ROOMY = SwitchLoad(ready=True, sessions=0, max_sessions=1000, sps_limit=1000)


def view(name: str = "a", index: int = 0, **fields: object) -> SwitchView:
    fields.setdefault("connected", True)
    fields.setdefault("live", True)
    fields.setdefault("load", ROOMY)
    return SwitchView(name=name, index=index, **fields)  # type: ignore[arg-type]


def load(**fields: object) -> SwitchLoad:
    return dataclasses.replace(ROOMY, **fields)  # type: ignore[arg-type]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, None),
        ({"connected": False, "live": False}, "not connected"),
        ({"connected": False, "live": False, "shutting_down": True}, "shutting down"),
        ({"live": False}, "not live"),
        ({"shutting_down": True}, "shutting down"),
        ({"load": load(ready=False)}, "paused"),
        ({"draining": True}, "draining"),
        ({"load": load(sessions=899)}, "full (899 of 1000 sessions)"),
        ({"in_flight": 450}, "full (900 of 1000 sessions)"),
        ({"load": None}, None),  # nothing known yet: no reason to refuse
        ({"load": SwitchLoad()}, None),
        ({"load": load(ready=None)}, None),
    ],
)
def test_each_refusal(fields: dict[str, object], reason: str | None) -> None:
    assert refusal(view(**fields)) == reason


def test_the_first_reason_is_given_when_there_are_several() -> None:
    everything = view(
        connected=False, live=False, draining=True, load=load(ready=False, sessions=999)
    )
    assert refusal(everything) == "not connected"
    assert refusal(dataclasses.replace(everything, connected=True)) == "not live"
    assert refusal(dataclasses.replace(everything, connected=True, live=True)) == "paused"
    paused_or_not = dataclasses.replace(everything, connected=True, live=True, load=load(sessions=999))
    assert refusal(paused_or_not) == "draining"


@pytest.mark.parametrize(
    ("sessions", "max_sessions", "in_flight", "full"),
    [
        (0, 1000, 0, False),
        (898, 1000, 0, False),  # 898 + 2 = 900 = 90%: still takes this one
        (899, 1000, 0, True),
        (0, 1000, 449, False),  # our own calls count two sessions each
        (0, 1000, 450, True),
        (500, 1000, 449, False),  # the larger of the two figures, not their sum
        (7, 10, 0, False),  # 7 + 2 = 9 = 90% of 10
        (8, 10, 0, True),
        (0, 2, 0, True),  # recording 23b's max_sessions 2: no call fits under 90%
        (0, 0, 0, True),
    ],
)
def test_full_means_the_call_would_pass_90_percent(
    sessions: int, max_sessions: int, in_flight: int, full: bool
) -> None:
    candidate = view(load=load(sessions=sessions, max_sessions=max_sessions), in_flight=in_flight)
    assert (refusal(candidate) is not None) == full


# -- avoidance --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sps_limit", "sent", "avoided"),
    [
        (1000, 0, False),
        (1000, 498, False),  # 2 x 499 = 998 <= 999
        (1000, 499, True),  # 2 x 500 = 1000 > 999: sps N admits N-1 sessions a second
        (30, 13, False),  # FreeSWITCH's default 30: 14 calls a second
        (30, 14, True),
        (2, 0, True),  # recording 23: `sps 2` admits one session a second, less than a call
        (None, 10_000, False),  # limit unknown: nothing to count against
    ],
)
def test_sessions_per_second_budget(sps_limit: int | None, sent: int, avoided: bool) -> None:
    candidate = view(load=load(sps_limit=sps_limit), sent_last_second=sent)
    assert (avoidance(candidate) is not None) == avoided
    assert refusal(candidate) is None  # avoided, never refused


@pytest.mark.parametrize(
    ("idle", "minimum", "avoided"),
    [(50.0, 10.0, False), (9.5, 10.0, True), (0.0, 0.0, False), (5.0, None, False), (None, 10.0, False)],
)
def test_idle_cpu_under_its_minimum(idle: float | None, minimum: float | None, avoided: bool) -> None:
    candidate = view(load=load(idle_cpu=idle, min_idle_cpu=minimum))
    assert (avoidance(candidate) is not None) == avoided


# -- choosing ---------------------------------------------------------------------------------


def test_nothing_usable_chooses_nothing() -> None:
    assert choose([]) is None
    views = [view("a", 0, live=False), view("b", 1, draining=True)]
    assert choose(views) is None
    assert describe_refusals(views) == "a not live, b draining"
    assert describe_refusals([]) == "none"


def test_refused_switches_are_skipped_whatever_their_load() -> None:
    views = [
        view("paused", 0, load=load(ready=False)),
        view("draining", 1, draining=True),
        view("busy", 2, load=load(sessions=600)),
    ]
    assert choose(views).name == "busy"  # type: ignore[union-attr]


def test_the_least_used_share_of_max_sessions_wins() -> None:
    small = view("small", 0, load=load(sessions=40, max_sessions=100))  # 40%
    large = view("large", 1, load=load(sessions=300, max_sessions=1000))  # 30%
    assert choose([small, large]).name == "large"  # type: ignore[union-attr]
    # our own calls in flight count when the switch's figure is older than they are
    large = dataclasses.replace(large, in_flight=250)  # 500 sessions: 50%
    assert choose([small, large]).name == "small"  # type: ignore[union-attr]


def test_equal_switches_go_by_calls_in_flight_then_config_order() -> None:
    a, b = view("a", 0), view("b", 1)
    assert choose([a, b]).name == "a"  # type: ignore[union-attr]
    assert choose([b, a]).name == "a"  # type: ignore[union-attr]  # config order, not list order
    assert choose([dataclasses.replace(a, in_flight=3), dataclasses.replace(b, in_flight=1)]).name == "b"  # type: ignore[union-attr]


def test_without_every_max_sessions_known_calls_in_flight_decide() -> None:
    known = view("known", 0, load=load(sessions=0), in_flight=2)
    unknown = view("unknown", 1, load=SwitchLoad(ready=True), in_flight=1)
    assert choose([known, unknown]).name == "unknown"  # type: ignore[union-attr]
    assert choose([known, dataclasses.replace(unknown, in_flight=5)]).name == "known"  # type: ignore[union-attr]


def test_an_avoided_switch_is_chosen_only_when_every_usable_one_is() -> None:
    spent = view("spent", 0, load=load(sps_limit=10), sent_last_second=5)
    busy = view("busy", 1, load=load(sessions=800))
    assert choose([spent, busy]).name == "busy"  # type: ignore[union-attr]
    # alone, or with only refused company, it still takes the call: FreeSWITCH decides
    assert choose([spent]).name == "spent"  # type: ignore[union-attr]
    assert choose([spent, view("off", 1, live=False)]).name == "spent"  # type: ignore[union-attr]


loads = st.builds(
    SwitchLoad,
    ready=st.none() | st.booleans(),
    sessions=st.none() | st.integers(0, 5000),
    max_sessions=st.none() | st.integers(0, 5000),
    sps_limit=st.none() | st.integers(0, 2000),
    idle_cpu=st.none() | st.floats(0, 100),
    min_idle_cpu=st.none() | st.floats(0, 100),
)
fleets = st.lists(
    st.builds(
        SwitchView,
        name=st.just(""),
        connected=st.booleans(),
        live=st.booleans(),
        draining=st.booleans(),
        shutting_down=st.booleans(),
        load=st.none() | loads,
        in_flight=st.integers(0, 3000),
        sent_last_second=st.integers(0, 1000),
    ),
    max_size=6,
).map(lambda views: [dataclasses.replace(v, name=f"s{i}", index=i) for i, v in enumerate(views)])


@settings(max_examples=400, deadline=None)
@given(fleets, st.randoms(use_true_random=False))
def test_choice_properties(views: list[SwitchView], rng: random.Random) -> None:
    chosen = choose(views)
    usable = [v for v in views if refusal(v) is None]
    # a switch is chosen exactly when one is usable, and it is a usable one
    assert (chosen is None) == (not usable)
    if chosen is None:
        return
    assert chosen in usable
    # an avoided one only when every usable one is avoided
    if avoidance(chosen) is not None:
        assert all(avoidance(v) is not None for v in usable)
    # none of the same standing is strictly less used, or as used and with fewer calls
    peers = [v for v in usable if (avoidance(v) is None) == (avoidance(chosen) is None)]
    if all(v.utilisation is not None for v in usable):
        assert all(chosen.utilisation <= v.utilisation for v in peers)  # type: ignore[operator]
    else:
        assert all(chosen.in_flight <= v.in_flight for v in peers)
    # the order the views come in changes nothing
    shuffled = list(views)
    rng.shuffle(shuffled)
    assert choose(shuffled) == chosen


# -- what a worker keeps about a switch -------------------------------------------------------


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def health(clocks: Clocks) -> SwitchHealth:
    return SwitchHealth("fs1:8021", clock=lambda: clocks.wall, monotonic=lambda: clocks.mono)


def test_the_fresher_reading_wins_and_keeps_what_it_does_not_say(
    health: SwitchHealth, clocks: Clocks
) -> None:
    assert health.load is None
    health.note_load(SwitchLoad(ready=True, sessions=4, max_sessions=100, sps_limit=30))
    clocks.advance(5)
    health.note_load(SwitchLoad(ready=False, sessions=6, sps_left=28))  # a heartbeat
    assert health.load == SwitchLoad(
        ready=False, sessions=6, max_sessions=100, sps_limit=30, sps_left=28
    )
    assert health.load_at == clocks.wall
    # an older reading (another worker's, from the store) fills gaps but overrides nothing
    health.note_load(SwitchLoad(ready=True, sessions=1, idle_cpu=50.0), at=clocks.wall - 10)
    assert health.load == SwitchLoad(
        ready=False, sessions=6, max_sessions=100, sps_limit=30, sps_left=28, idle_cpu=50.0
    )
    assert health.load_at == clocks.wall


def test_shutting_down_lasts_until_the_switch_says_it_is_ready_again(
    health: SwitchHealth, clocks: Clocks
) -> None:
    health.note_load(SwitchLoad(ready=True))
    clocks.advance(1)
    health.note_shutting_down()
    assert health.shutting_down
    health.note_load(SwitchLoad(ready=True), at=clocks.wall - 5)  # said before the shutdown
    assert health.shutting_down
    clocks.advance(1)
    health.note_load(SwitchLoad(ready=False))
    assert health.shutting_down
    clocks.advance(1)
    health.note_load(SwitchLoad(ready=True))  # back after a restart
    assert not health.shutting_down


def test_originates_are_counted_over_the_last_second(health: SwitchHealth, clocks: Clocks) -> None:
    assert health.originates_last_second() == 0
    for _ in range(3):
        health.note_originate()
    clocks.advance(0.6)
    health.note_originate()
    assert health.originates_last_second() == 4
    clocks.advance(0.4)  # the first three are a second old now
    assert health.originates_last_second() == 1
    clocks.advance(5)
    assert health.originates_last_second() == 0


def test_the_shared_record_sets_the_drain_flag_and_offers_its_reading(
    health: SwitchHealth, clocks: Clocks
) -> None:
    health.note_load(SwitchLoad(sessions=3, sps_limit=30))
    record = SwitchRecord(
        "fs1:8021",
        draining=True,
        load=SwitchLoad(ready=True, sessions=9, max_sessions=100),
        load_at=clocks.wall + 1,
    )
    health.apply_record(record)
    assert health.draining
    assert health.load == SwitchLoad(ready=True, sessions=9, max_sessions=100, sps_limit=30)
    health.apply_record(SwitchRecord("fs1:8021", draining=False))  # no reading: flag only
    assert not health.draining
    assert health.load is not None and health.load.sessions == 9
