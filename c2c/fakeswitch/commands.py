"""The API commands (what ``api`` and ``bgapi`` run), with FreeSWITCH's exact replies.

``ApiCommands.run(line, done)`` calls ``done(output)`` once: at once for every command but
``originate``, which answers when its A leg has answered or failed (esl-reference.md 2.1, 5).

One command is the simulator's own and has no FreeSWITCH counterpart: ``fakeswitch_heard
<caller-uuid>`` answers, as JSON, what the caller's phone has heard since it answered (heard.py),
or ``-ERR no such call``.
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
from c2c.fakeswitch.events import EventBus, Identity
from c2c.fakeswitch.originate import (
    DialStringError,
    OriginateUsageError,
    parse_originate,
)

log = logging.getLogger(__name__)

Done = Callable[[str], None]

AT_API = ("switch_loadable_module.c", "switch_api_execute", 3119)
AT_CHANNEL_DATA = ("mod_commands.c", "uuid_dump_function", 6500)

SHOW_CHANNELS_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest application "
    "application_data dialplan context read_codec read_rate read_bit_rate write_codec write_rate "
    "write_bit_rate secure hostname presence_id presence_data accountcode callstate callee_name "
    "callee_num callee_direction call_uuid sent_callee_name sent_callee_num initial_cid_name "
    "initial_cid_num initial_ip_addr initial_dest initial_dialplan initial_context"
).split()


class ApiCommands:
    def __init__(
        self,
        switchboard: Switchboard,
        bus: EventBus,
        identity: Identity,
        clock: Clock,
        max_sessions: int = 10_000,
    ) -> None:
        self.switchboard = switchboard
        self.bus = bus
        self.identity = identity
        self.clock = clock
        self.max_sessions = max_sessions
        self.started = time.monotonic()
        self._handlers: dict[str, Callable[[str], str]] = {
            "uuid_kill": self.uuid_kill,
            "uuid_exists": self.uuid_exists,
            "uuid_dump": self.uuid_dump,
            "uuid_getvar": self.uuid_getvar,
            "uuid_setvar": self.uuid_setvar,
            "sched_hangup": self.sched_hangup,
            "show": self.show,
            "status": self.status,
            "hupall": self.hupall,
            "global_getvar": self.global_getvar,
            "version": self.version,
            "hostname": lambda args: self.identity.hostname,
            "fakeswitch_heard": self.fakeswitch_heard,
        }
        switchboard.api_runner = self.run_now

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
        words = args.split()
        if not words or words[0] not in ("channels", "calls"):
            return (
                "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|"
                "channels [count|like <match string>]\n"
            )
        rows = [self._channel_row(leg) for leg in self.switchboard.legs.values()]
        rest = words[1:]
        if rest[:1] == ["count"]:
            return f"\n{len(rows)} total.\n"
        if len(rest) >= 2 and rest[0] == "like":
            rows = [row for row in rows if any(rest[1] in value for value in row.values())]
            rest = rest[2:]
        if rest[:2] == ["as", "json"]:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
        lines = [",".join(SHOW_CHANNELS_COLUMNS)]
        lines += [",".join(row[column] for column in SHOW_CHANNELS_COLUMNS) for row in rows]
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def _channel_row(self, leg: Leg) -> dict[str, str]:
        channel = leg.channel
        caller = channel.caller
        created = caller.times.created / 1_000_000
        codec = channel.has_media
        v = channel.variables
        return {
            "uuid": channel.uuid,
            "direction": "outbound",
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
            "created_epoch": str(int(created)),
            "name": channel.name,
            "state": channel.state,
            "cid_name": caller.caller_id_name,
            "cid_num": caller.caller_id_number,
            "ip_addr": caller.network_addr,
            "dest": caller.destination_number,
            "application": v.get("current_application") or "",
            "application_data": v.get("current_application_data") or "",
            "dialplan": "XML",
            "context": caller.context,
            "read_codec": "PCMU" if codec else "",
            "read_rate": "8000" if codec else "",
            "read_bit_rate": "64000" if codec else "",
            "write_codec": "PCMU" if codec else "",
            "write_rate": "8000" if codec else "",
            "write_bit_rate": "64000" if codec else "",
            "secure": "",
            "hostname": self.identity.hostname,
            "presence_id": "",
            "presence_data": "",
            "accountcode": "",
            "callstate": channel.call_state,
            "callee_name": caller.callee_id_name,
            "callee_num": caller.callee_id_number,
            "callee_direction": "",
            "call_uuid": channel.call_uuid,
            "sent_callee_name": v.get("last_sent_callee_id_name") or "",
            "sent_callee_num": v.get("last_sent_callee_id_number") or "",
            "initial_cid_name": caller.orig_caller_id_name,
            "initial_cid_num": caller.orig_caller_id_number,
            "initial_ip_addr": "",
            "initial_dest": caller.destination_number,
            "initial_dialplan": "XML",
            "initial_context": caller.context,
        }

    def status(self, args: str = "") -> str:
        elapsed_us = int((time.monotonic() - self.started) * 1_000_000)
        seconds, micros = divmod(elapsed_us, 1_000_000)
        millis, micros = divmod(micros, 1000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        days, hours = divmod(hours, 24)
        years, days = divmod(days, 365)
        board = self.switchboard
        current = board.count
        return (
            f"UP {years} years, {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, "
            f"{millis} milliseconds, {micros} microseconds\n"
            f"FreeSWITCH (Version {self.identity.version}) is ready\n"
            f"{board.sessions_since_startup} session(s) since startup\n"
            f"{current} session(s) - peak {board.peak_sessions}, last 5min {board.peak_sessions} \n"
            f"0 session(s) per Sec out of max 50, peak 0, last 5min 0 \n"
            f"{self.max_sessions} session(s) max\n"
            "min idle cpu 0.00/100.00\n"
            "Current Stack Size/Max 240K/8192K\n"
        )

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
