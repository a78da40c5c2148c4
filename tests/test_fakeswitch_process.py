"""The simulator as a separate process (``python -m c2c.fakeswitch``) and the CLI wiring."""

from __future__ import annotations

import argparse
import json
import signal
import sys

import gevent
import pytest
from gevent import subprocess

from c2c.cli import fakeswitch as cli
from c2c.fakeswitch import runner
from tests.fixtures.fakeswitch.helpers import SIPP_SCENARIO, RawClient


def start_process(*args: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "c2c.fakeswitch", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with gevent.Timeout(10, AssertionError("no LISTENING line within 10 s")):
        line = process.stdout.readline()
    assert line.startswith("LISTENING 127.0.0.1:"), line
    return process, int(line.rsplit(":", 1)[1])


def test_process_prints_its_port_serves_and_shuts_down_on_sigterm():
    process, port = start_process(
        "--password", "s3cret", "--time-scale", "0", "--scenario", str(SIPP_SCENARIO)
    )
    try:
        raw = RawClient(port)
        raw.login("s3cret")
        reply = raw.command("api originate sofia/internal/1000@127.0.0.1:5092 &park")
        assert reply.body == b"-ERR USER_BUSY\n"
        process.send_signal(signal.SIGTERM)
        assert raw.wait_closed(timeout=5)
        assert raw.frames[-1].body == b"The system is being shut down.\n"
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_process_with_faults_and_acl():
    process, port = start_process("--fault-error-all", "--acl", "127.0.0.0/8")
    try:
        raw = RawClient(port)
        raw.login()
        assert raw.command("api status").body == b"-ERR simulated failure\n"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_bad_scenario_file_fails_with_a_message(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"rules": [{"suffix": "12", "action": "explode"}]}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2c.fakeswitch",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "rule 1: action must be one of" in result.stderr


def test_show_default_scenario(capsys):
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    assert runner.serve(parser.parse_args(["--show-default-scenario"])) == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    assert {"suffix": "0486", "action": "busy"} in rules


def test_cli_subcommand_options():
    parser = argparse.ArgumentParser(prog="c2c")
    sub = parser.add_subparsers(dest="group")
    cli.add_parser(sub)
    args = parser.parse_args(
        [
            "fakeswitch",
            "--listen",
            "0.0.0.0:8022",
            "--password",
            "pw",
            "--time-scale",
            "0.5",
            "--acl",
            "10.0.0.0/8",
            "--fault-stall",
            "--fault-drop-every",
            "30",
        ]
    )
    assert args.group == "fakeswitch" and args.listen == ("0.0.0.0", 8022)
    switch = runner.build(args)
    assert switch.password == "pw" and switch.clock.time_scale == 0.5
    assert switch.faults.stall and switch.faults.drop_every == 30
    assert switch.switchboard.on_leg_complete is None
    args = parser.parse_args(
        [
            "fakeswitch",
            "--cdr-url",
            "http://127.0.0.1:1/cdr",
            "--cdr-encode",
            "textxml",
            "--cdr-retries",
            "0",
        ]
    )
    assert runner.build(args).switchboard.on_leg_complete is not None
    assert callable(cli.run)
    with pytest.raises(SystemExit):
        parser.parse_args(["fakeswitch", "--listen", "nope"])
