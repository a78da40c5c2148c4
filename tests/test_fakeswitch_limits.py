"""The core's admission rules and what it reports about them (limits.py, core_status.py,
fsctl.py), as plain values: a time source the test moves, no sockets.

The rules are FreeSWITCH's (switch_core_session_request_uuid, switch_time.c's refill,
mod_commands.c's fsctl and status); recordings 21-23b give the replies and figures.
"""

from __future__ import annotations

import random

import pytest

from c2c.fakeswitch.core_status import (
    duration_text,
    heartbeat_headers,
    heartbeat_version,
    status_text,
)
from c2c.fakeswitch.fsctl import CTL_SYNTAX, atoi, fsctl
from c2c.fakeswitch.limits import FULL, PAUSED, THROTTLED, WINDOW_TICKS, SessionLimits


class Time:
    """The switch's clock, moved by hand."""

    def __init__(self, start: float = 1000.25) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def limits(max_sessions: int = 10_000, sps: int = 1000) -> tuple[SessionLimits, Time]:
    clock = Time()
    return SessionLimits(clock, max_sessions=max_sessions, sps=sps), clock


# -- sessions per second --------------------------------------------------------------------


def test_sps_n_admits_n_minus_one_a_second_and_refusals_use_up_the_budget() -> None:
    core, clock = limits(sps=3)
    assert [core.admit(0) for _ in range(5)] == [None, None, THROTTLED, THROTTLED, THROTTLED]
    assert core.sps == -2  # refused attempts decrement it too (recording 23)
    clock.advance(0.5)
    assert core.admit(2) == THROTTLED  # same second
    clock.advance(0.5)  # the next once-a-second refill
    assert core.admit(2) is None
    assert core.sps_last == 3 - (-3)  # the limit less what was left: attempts, not sessions


def test_a_new_sps_takes_effect_at_the_next_refill_and_the_last_figure_goes_negative() -> None:
    core, clock = limits(sps=1000)
    assert core.set_sps(2) == 2
    assert core.admit(0) is None and core.admit(1) is None  # still this second's 1000
    clock.advance(1.0)
    core.catch_up(0)
    assert (core.sps, core.sps_last) == (2, 2 - 998)  # 1000 - 2 used, then refilled to 2
    core2, clock2 = limits(sps=1000)
    core2.set_sps(2)
    clock2.advance(1.0)
    core2.catch_up(0)
    assert core2.sps_last == -998  # status: "-998 session(s) per Sec out of max 2" (23)
    clock2.advance(1.0)
    core2.catch_up(0)
    assert core2.sps_last == 0
    assert [core2.admit(0), core2.admit(1)] == [None, THROTTLED]


def test_tick_refills_now() -> None:
    core, _ = limits(sps=1000)
    core.set_sps(2)
    core.tick()
    assert (core.sps, core.sps_last, core.sps_total) == (2, -998, 2)


def test_set_sps_and_max_sessions_ignore_what_is_not_positive() -> None:
    core, _ = limits(max_sessions=40, sps=30)
    assert core.set_sps(0) == 30 and core.set_sps(-5) == 30
    assert core.set_max_sessions(0) == 40 and core.set_max_sessions(-1) == 40
    assert core.set_max_sessions(2) == 2 and core.max_sessions == 2
    with pytest.raises(ValueError):
        SessionLimits(Time(), max_sessions=0)


# -- max sessions -----------------------------------------------------------------------------


def test_a_session_is_refused_when_it_would_pass_max_sessions() -> None:
    core, _ = limits(max_sessions=2)
    assert core.admit(0) is None
    assert core.admit(1) is None  # count + 1 == max: still admitted
    assert core.admit(2) == FULL
    assert core.sps == 1000 - 3  # the budget was taken before the limit was looked at
    assert (core.since_startup, core.sessions_peak, core.sessions_peak_fivemin) == (2, 2, 2)


# -- pause ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commands", "ready", "outbound_refused"),
    [
        ([("pause", None)], False, True),  # 22: "is not ready", originate refused
        ([("pause", "outbound")], True, True),  # 22b: still "ready"
        ([("pause", "inbound")], True, False),  # the simulator has no inbound legs
        ([("pause", None), ("resume", None)], True, False),
        ([("pause", None), ("resume", "outbound")], True, False),  # inbound still paused
        ([("pause", "outbound"), ("resume", None)], True, False),
        ([("pause", "sideways")], False, True),  # any other word: both directions
    ],
)
def test_pause_and_resume(commands, ready, outbound_refused) -> None:
    core, _ = limits()
    for verb, direction in commands:
        core.pause(direction, paused=verb == "pause")
    assert core.ready is ready
    assert (core.admit(0) == PAUSED) is outbound_refused


def test_a_paused_refusal_leaves_the_budget_alone() -> None:
    core, _ = limits(sps=5)
    core.pause("outbound")
    assert core.admit(0) == PAUSED
    assert core.sps == 5 and core.since_startup == 0


# -- the refill, against a second-by-second model of switch_time.c ---------------------------


class ModelCore:
    """switch_time.c's timer thread, one refill per second, written out naively."""

    def __init__(self, sps: int, max_sessions: int) -> None:
        self.total, self.sps, self.max = sps, sps, max_sessions
        self.last = self.peak = self.peak5 = self.speak = self.speak5 = self.window = 0

    def refill(self, count: int) -> None:
        self.last = self.total - self.sps
        if self.window >= WINDOW_TICKS:
            self.peak5, self.window, self.speak5 = 0, 0, count
        self.window += 1
        self.peak5 = max(self.peak5, self.last)
        self.peak = max(self.peak, self.last)
        self.sps = self.total

    def admit(self, count: int) -> str | None:
        self.sps -= 1
        if self.sps <= 0:
            return THROTTLED
        if count + 1 > self.max:
            return FULL
        self.speak, self.speak5 = max(self.speak, count + 1), max(self.speak5, count + 1)
        return None


@pytest.mark.parametrize("seed", range(12))
def test_lazy_refills_match_one_refill_a_second(seed: int) -> None:
    """Idle stretches of any length (even past the five-minute window) are caught up at once
    and give what a refill every second would have."""
    rng = random.Random(seed)
    core, clock = limits(max_sessions=8, sps=4)
    model = ModelCore(sps=4, max_sessions=8)
    count = 0
    for _ in range(300):
        step = rng.choice([0, 0, 1, 1, 2, 7, 299, 300, 301, 650])
        for _ in range(step):
            model.refill(count)
        clock.advance(step)
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.3:
                core.catch_up(count)  # as the switchboard does when a leg goes
                count = max(0, count - 1)
            if rng.random() < 0.1:
                total = rng.randint(1, 6)
                core.set_sps(total, count)
                model.total = total
            result = core.admit(count)
            assert result == model.admit(count)
            if result is None:
                count += 1
        core.catch_up(count)
        got = (core.sps, core.sps_last, core.sps_peak, core.sps_peak_fivemin)
        assert got == (model.sps, model.last, model.peak, model.peak5)
        assert (core.sessions_peak, core.sessions_peak_fivemin) == (model.speak, model.speak5)


# -- status and HEARTBEAT ---------------------------------------------------------------------


def test_duration_text_as_the_source_writes_it() -> None:
    assert duration_text(132_483_740) == (
        "0 years, 0 days, 0 hours, 2 minutes, 12 seconds, 483 milliseconds, 740 microseconds"
    )
    one_each = ((((365 + 1) * 24 + 1) * 60 + 1) * 60 + 1) * 1_000_000 + 1001
    assert duration_text(one_each) == (
        "1 year, 1 day, 1 hour, 1 minute, 1 second, 1 millisecond, 1 microsecond"
    )
    assert duration_text(-5).startswith("0 years")


def test_status_text_line_by_line() -> None:
    """Recording 23: after `fsctl sps 2` and a refill."""
    core, _ = limits(max_sessions=4000, sps=1000)
    core.set_sps(2)
    core.tick()
    text = status_text(core, 0, 215_473_895, "1.10.12-release  64bit")
    assert text == (
        "UP 0 years, 0 days, 0 hours, 3 minutes, 35 seconds, 473 milliseconds, 895 microseconds\n"
        "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
        "0 session(s) since startup\n"
        "0 session(s) - peak 0, last 5min 0 \n"
        "-998 session(s) per Sec out of max 2, peak 0, last 5min 0 \n"
        "4000 session(s) max\n"
        "min idle cpu 0.00/98.00\n"
        "Current Stack Size/Max 240K/8192K\n"
    )
    core.pause()
    assert "\nFreeSWITCH (Version 1.10.12-release  64bit) is not ready\n" in status_text(
        core, 0, 0, "1.10.12-release  64bit"
    )


def test_heartbeat_headers_in_recording_21s_order_with_unsigned_figures() -> None:
    core, _ = limits(max_sessions=4000, sps=2)
    core.admit(0)
    core.admit(1)
    core.admit(1)  # the budget is now -1: "%u" makes it 4294967295
    core.idle_cpu = 42.766667
    headers = heartbeat_headers(core, 1, 20_009_816, "1.10.12-release  64bit")
    assert headers == [
        ("Event-Info", "System Ready"),
        (
            "Up-Time",
            "0 years, 0 days, 0 hours, 0 minutes, 20 seconds, 9 milliseconds, 816 microseconds",
        ),
        ("FreeSWITCH-Version", "1.10.12-release~64bit"),
        ("Uptime-msec", "20009"),
        ("Session-Count", "1"),
        ("Max-Sessions", "4000"),
        ("Session-Per-Sec", str(2**32 - 1)),
        ("Session-Per-Sec-Last", "0"),
        ("Session-Per-Sec-Max", "0"),
        ("Session-Per-Sec-FiveMin", "0"),
        ("Session-Since-Startup", "1"),
        ("Session-Peak-Max", "1"),
        ("Session-Peak-FiveMin", "1"),
        ("Idle-CPU", "42.766667"),
    ]
    core.pause()
    assert heartbeat_headers(core, 0, 0, "x")[0] == ("Event-Info", "System Ready")
    assert heartbeat_version("1.10.12-release  64bit") == "1.10.12-release~64bit"


# -- fsctl ----------------------------------------------------------------------------------


def test_fsctl_replies() -> None:
    core, _ = limits(max_sessions=4000, sps=1000)
    hung_up: list[bool] = []

    def run(args: str) -> str:
        return fsctl(args, core, 0, lambda: hung_up.append(True))

    assert run("pause") == "+OK\n" and not core.ready
    assert run("pause_check") == "true" and run("ready_check") == "false"
    assert run("RESUME") == "+OK\n" and core.ready  # strcasecmp
    assert run("pause outbound") == "+OK\n"
    assert (run("pause_check outbound"), run("pause_check inbound")) == ("true", "false")
    assert run("pause_check") == "false" and run("ready_check") == "true"
    assert run("resume outbound") == "+OK\n" and core.admit(0) is None
    assert run("sps 2") == "+OK sessions per second: 2\n"  # 23
    assert run("sps") == "+OK sessions per second: 2\n"  # no number: just says
    assert run("sps nonsense") == "+OK sessions per second: 2\n"
    assert run("sps 1000") == "+OK sessions per second: 1000\n"
    assert run("max_sessions 2") == "+OK max sessions: 2\n"  # 23b
    assert run("max_sessions -7") == "+OK max sessions: 2\n"
    assert run("max_sessions 4000") == "+OK max sessions: 4000\n"
    assert run("last_sps") == "+OK last sessions per second: 0\n"
    assert run("shutdown_check") == "false"
    assert run("hupall") == "+OK\n" and hung_up == [True]
    assert run("") == f"-USAGE: {CTL_SYNTAX}\n"
    assert run("fly") == f"-ERR INVALID COMMAND\nUSAGE: fsctl {CTL_SYNTAX}"
    assert run("shutdown elegant") == "-ERR fsctl shutdown is not simulated\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("  7x", 7),
        ("-3", -3),
        ("+4", 4),
        ("x", 0),
        ("", 0),
        (None, 0),
        ("99999999999", 2**31 - 1),
    ],
)
def test_atoi(text, value) -> None:
    assert atoi(text) == value
