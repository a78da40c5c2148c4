"""The runner's options for issue 12 (--sps, --max-sessions, --heartbeat-interval, --idle-cpu,
--fault-freeze-*): help text, validation, what they build, and a process that honours them."""

from __future__ import annotations

import argparse

import pytest

from c2c.cli import fakeswitch as cli
from c2c.fakeswitch import runner
from tests.fixtures.fakeswitch.helpers import RawClient
from tests.fixtures.fakeswitch.helpers import start_simulator as start_process
from tests.fixtures.fakeswitch.helpers import stop_simulator as stop

NEW_OPTIONS = (
    "--max-sessions",
    "--sps",
    "--heartbeat-interval",
    "--idle-cpu",
    "--fault-freeze-after",
    "--fault-freeze-for",
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="c2c")
    cli.add_parser(top.add_subparsers(dest="group"))
    return top


def test_help_documents_every_option():
    sub = argparse.ArgumentParser(prog="c2c fakeswitch")
    runner.add_arguments(sub)
    text = sub.format_help()
    for option in NEW_OPTIONS + ("--fault-stall", "--time-scale", "--cdr-url"):
        assert option in text
    assert "SIGUSR1" in text and "FROZEN" in text


def test_defaults_and_old_options_keep_working():
    switch = runner.build(parser().parse_args(["fakeswitch", "--fault-stall"]))
    assert switch.faults.stall and not switch.faults.frozen
    assert switch.heartbeat_interval == 20.0
    assert (switch.limits.max_sessions, switch.limits.sps_total) == (10_000, 10_000)
    assert switch.limits.idle_cpu == 98.0


def test_the_new_options_build_the_switch():
    args = parser().parse_args(
        [
            "fakeswitch",
            "--max-sessions",
            "40",
            "--sps",
            "30",
            "--heartbeat-interval",
            "0",
            "--idle-cpu",
            "55.5",
            "--time-scale",
            "0.1",
        ]
    )
    switch = runner.build(args)
    assert switch.heartbeat_interval is None  # 0: no heartbeat
    assert (switch.limits.max_sessions, switch.limits.sps_total) == (40, 30)
    assert switch.limits.idle_cpu == 55.5
    assert switch.switchboard.max_sessions == 40 and switch.api.max_sessions == 40


@pytest.mark.parametrize(
    "bad",
    [
        ["--max-sessions", "0"],
        ["--max-sessions", "many"],
        ["--sps", "-1"],
        ["--sps", "1.5"],
        ["--heartbeat-interval", "-2"],
        ["--idle-cpu", "101"],
        ["--fault-freeze-after", "soon"],
    ],
)
def test_bad_values_are_refused_with_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["fakeswitch", *bad])
    assert exc.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_a_process_with_limits_says_them_in_status_and_heartbeats():
    process, port = start_process(
        "--sps", "3", "--max-sessions", "2", "--heartbeat-interval", "0.05", "--idle-cpu", "42.5"
    )
    try:
        client = RawClient(port)
        client.login()
        status = client.command("api status").body.decode()
        assert " session(s) per Sec out of max 3, " in status
        assert "\n2 session(s) max\n" in status and "\nmin idle cpu 0.00/42.50\n" in status
        assert client.command("api fsctl max_sessions").body == b"+OK max sessions: 2\n"
        client.command("event plain HEARTBEAT")
        beat = client.wait_event(lambda e: e.name == "HEARTBEAT")
        assert (beat.get("Max-Sessions"), beat.get("Idle-CPU")) == ("2", "42.500000")
        client.close()
    finally:
        stop(process)
