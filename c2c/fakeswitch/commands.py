"""The API commands (what ``api`` and ``bgapi`` run), with FreeSWITCH's exact replies.

``ApiCommands.run(line, done)`` calls ``done(output)`` once: at once for every command but
``originate``, which answers when its A leg has answered or failed (esl-reference.md 2.1, 5).

``status`` and the HEARTBEAT share core_status.py, ``fsctl`` is fsctl.py, ``show channels|calls``
listing.py. One command is the simulator's own and has no FreeSWITCH counterpart:
``fakeswitch_heard <caller-uuid>`` answers, as JSON, what the caller's phone has heard since it
answered (heard.py), or ``-ERR no such call``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from c2c.esl.protocol import encode_event_json, encode_event_plain
from c2c.fakeswitch.calls import Leg, Switchboard, parse_seconds
from c2c.fakeswitch.causes import cause_from_string
from c2c.fakeswitch.clock import Clock
from c2c.fakeswitch.core_status import status_text
from c2c.fakeswitch.events import EventBus, Identity
from c2c.fakeswitch.fsctl import fsctl
from c2c.fakeswitch.limits import SessionLimits
from c2c.fakeswitch.listing import SHOW_CHANNELS_COLUMNS, channel_row, show
from c2c.fakeswitch.originate import (
    DialStringError,
    OriginateUsageError,
    parse_originate,
)

log = logging.getLogger(__name__)

Done = Callable[[str], None]

AT_API = ("switch_loadable_module.c", "switch_api_execute", 3119)
AT_CHANNEL_DATA = ("mod_commands.c", "uuid_dump_function", 6500)

__all__ = ["SHOW_CHANNELS_COLUMNS", "ApiCommands"]


class ApiCommands:
    def __init__(
        self,
        switchboard: Switchboard,
        bus: EventBus,
        identity: Identity,
        clock: Clock,
        max_sessions: int | None = None,
    ) -> None:
        self.switchboard = switchboard
        self.bus = bus
        self.identity = identity
        self.clock = clock
        if max_sessions is not None:
            switchboard.max_sessions = max_sessions
        self.started = time.monotonic()
        # The switch's uptime in microseconds (FakeSwitch gives its own, from its last start).
        self.uptime_us: Callable[[], int] = lambda: int(
            (time.monotonic() - self.started) * 1_000_000
        )
        self._handlers: dict[str, Callable[[str], str]] = {
            "uuid_kill": self.uuid_kill,
            "uuid_exists": self.uuid_exists,
            "uuid_dump": self.uuid_dump,
            "uuid_getvar": self.uuid_getvar,
            "uuid_setvar": self.uuid_setvar,
            "sched_hangup": self.sched_hangup,
            "show": self.show,
            "status": self.status,
            "fsctl": self.fsctl,
            "hupall": self.hupall,
            "global_getvar": self.global_getvar,
            "version": self.version,
            "hostname": lambda args: self.identity.hostname,
            "fakeswitch_heard": self.fakeswitch_heard,
        }
        switchboard.api_runner = self.run_now

    @property
    def limits(self) -> SessionLimits:
        return self.switchboard.limits

    @property
    def max_sessions(self) -> int:
        return self.switchboard.max_sessions

    def run(self, line: str, done: Done) -> None:
        command, _, args = line.strip().partition(" ")
        args = args.strip()
        self._fire_api_event(command, args)
        if command == "originate":
            self.originate(args, done)
            return
        handler = self._handlers.get(command)
        if handler is None:
            done(f"-ERR {command} Command not found!\n")
            return
        try:
            output = handler(args)
        except Exception:
            log.exception("api %s failed", command)
            output = f"-ERR {command} failed\n"
        done(output)

    def run_now(self, line: str) -> str:
        """Run a command whose output nobody waits for (api_on_answer)."""
        outputs: list[str] = []
        self.run(line, outputs.append)
        return outputs[0] if outputs else ""

    def _fire_api_event(self, command: str, args: str) -> None:
        headers = [("API-Command", command)]
        if args:
            headers.append(("API-Command-Argument", args))
        self.bus.fire("API", AT_API, headers)

    # ---------------------------------------------------------------------------------------

    def originate(self, args: str, done: Done) -> None:
        try:
            request = parse_originate(args)
        except OriginateUsageError as exc:
            done(f"-USAGE: {exc}\n")
            return
        except DialStringError as exc:
            done(f"-ERR {exc.cause}\n")
            return
        self.switchboard.originate(request, done)

    def uuid_kill(self, args: str) -> str:
        words = args.split()
        if not words:
            return "-USAGE: <uuid> [cause]\n"
        cause = cause_from_string(words[1] if len(words) > 1 else None)
        return "+OK\n" if self.switchboard.kill(words[0], cause) else "-ERR No such channel!\n"

    def uuid_exists(self, args: str) -> str:
        words = args.split()
        return "true" if words and self.switchboard.live(words[0]) else "false"

    def sched_hangup(self, args: str) -> str:
        words = args.split()
        usage = "-USAGE: [+]<time> <uuid> [<cause>]\n"
        if len(words) < 2:
            return usage
        seconds = parse_seconds(words[0])
        if seconds is None:
            return usage
        leg = self.switchboard.live(words[1])
        if leg is None:
            return "-ERR No such channel!\n"
        cause = cause_from_string(words[2] if len(words) > 2 else None, "ALLOTTED_TIMEOUT")
        self.switchboard.schedule_hangup(leg, seconds, cause)
        return "+OK\n"

    def hupall(self, args: str) -> str:
        words = args.split()
        cause = cause_from_string(words[0] if words else None, "MANAGER_REQUEST")
        if len(words) >= 3:
            name, value = words[1], words[2]
            for leg in list(self.switchboard.legs.values()):
                if leg.channel.variables.get(name) == value:
                    self.switchboard.kill_leg(leg, cause)
            return f"+OK hangup all channels matching [{name}]=[{value}] with cause: {cause}\n"
        self.switchboard.hupall(cause)
        return f"+OK hangup all channels with cause {cause}\n"

    def fakeswitch_heard(self, args: str) -> str:
        """Simulator only (real FreeSWITCH has no such command): what the caller heard."""
        words = args.split()
        if not words:
            return "-USAGE: <caller-uuid>\n"
        heard = self.switchboard.heard.get(words[0])
        if heard is None:
            return "-ERR no such call\n"
        return json.dumps(heard.to_json(), separators=(",", ":")) + "\n"

    def uuid_getvar(self, args: str) -> str:
        words = args.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <var>\n"
        leg = self.switchboard.live(words[0])
        if leg is None:
            return "-ERR No such channel!\n"
        return leg.channel.variables.get(words[1]) or "_undef_"

    def uuid_setvar(self, args: str) -> str:
        words = args.split(" ", 2)
        if len(words) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        leg = self.switchboard.live(words[0])
        if leg is None:
            return "-ERR No such channel!\n"
        leg.channel.variables.set(words[1], words[2] if len(words) > 2 else None)
        return "+OK\n"

    def uuid_dump(self, args: str) -> str:
        words = args.split()
        if not words:
            return "-USAGE: <uuid> [format]\n"
        leg = self.switchboard.live(words[0])
        if leg is None:
            return "-ERR No such channel!\n"
        headers = self.bus.standard_headers("CHANNEL_DATA", AT_CHANNEL_DATA)
        headers += leg.channel.event_headers("CHANNEL_DATA")
        fmt = words[1].lower() if len(words) > 1 else "txt"
        if fmt == "json":
            return encode_event_json(headers).decode("utf-8")
        if fmt == "plain":  # not encoded, values in brackets (the flag is inverted in source)
            return "".join(f"{name}: [{value}]\n" for name, value in headers) + "\n"
        return encode_event_plain(headers).decode("ascii")

    def show(self, args: str) -> str:
        return show(args, list(self.switchboard.legs.values()), self.identity.hostname)

    def _channel_row(self, leg: Leg) -> dict[str, str]:
        return channel_row(leg, self.identity.hostname)

    def status(self, args: str = "") -> str:
        board = self.switchboard
        return status_text(board.limits, board.count, self.uptime_us(), self.identity.version)

    def fsctl(self, args: str) -> str:
        board = self.switchboard
        return fsctl(args, board.limits, board.count, lambda: board.hupall("MANAGER_REQUEST"))

    def global_getvar(self, args: str) -> str:
        name = args.strip()
        values = {
            "hostname": self.identity.hostname,
            "core_uuid": self.identity.core_uuid,
            "local_ip_v4": self.identity.ipv4,
            "local_ip_v6": self.identity.ipv6,
            "switchname": self.identity.hostname,
        }
        if not name:
            return "".join(f"{key}={value}\n" for key, value in values.items())
        return values.get(name, "")

    def version(self, args: str = "") -> str:
        return f"FreeSWITCH Version {self.identity.version} (simulated by c2c fakeswitch)\n"
