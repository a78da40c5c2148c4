"""A channel (one leg) as events show it: state, caller profile, other leg, variables.

The header blocks follow switch_channel_event_set_data (esl-reference.md 3.2) and the recordings:
channel data, then the ``Caller-`` profile, then ``Other-Type`` and the ``Other-Leg-`` profile when
there is one, then every channel variable as ``variable_<name>`` for the events that carry them.
Variables keep the order they were set in, and setting one again moves it to the end, as
switch_channel_set_variable does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

Headers = list[tuple[str, str]]

# Events that carry the variables (switch_channel_event_set_extended_data).
EVENTS_WITH_VARIABLES = frozenset(
    """CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_ANSWER CHANNEL_PARK CHANNEL_UNPARK
    CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_HANGUP
    CHANNEL_HANGUP_COMPLETE CHANNEL_DATA CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_DESTROY
    SESSION_HEARTBEAT API CUSTOM CHANNEL_HOLD CHANNEL_UNHOLD""".split()
)

CODEC_HEADERS: Headers = [
    ("Channel-Read-Codec-Name", "PCMU"),
    ("Channel-Read-Codec-Rate", "8000"),
    ("Channel-Read-Codec-Bit-Rate", "64000"),
    ("Channel-Write-Codec-Name", "PCMU"),
    ("Channel-Write-Codec-Rate", "8000"),
    ("Channel-Write-Codec-Bit-Rate", "64000"),
]


@dataclass
class ProfileTimes:
    """Caller profile times, in microseconds since the epoch (0 when unset)."""

    profile_created: int = 0
    created: int = 0
    answered: int = 0
    progress: int = 0
    progress_media: int = 0
    hangup: int = 0
    transfer: int = 0
    resurrect: int = 0
    bridged: int = 0
    last_hold: int = 0
    hold_accum: int = 0

    def headers(self, prefix: str) -> Headers:
        return [
            (f"{prefix}Profile-Created-Time", str(self.profile_created)),
            (f"{prefix}Channel-Created-Time", str(self.created)),
            (f"{prefix}Channel-Answered-Time", str(self.answered)),
            (f"{prefix}Channel-Progress-Time", str(self.progress)),
            (f"{prefix}Channel-Progress-Media-Time", str(self.progress_media)),
            (f"{prefix}Channel-Hangup-Time", str(self.hangup)),
            (f"{prefix}Channel-Transfer-Time", str(self.transfer)),
            (f"{prefix}Channel-Resurrect-Time", str(self.resurrect)),
            (f"{prefix}Channel-Bridged-Time", str(self.bridged)),
            (f"{prefix}Channel-Last-Hold", str(self.last_hold)),
            (f"{prefix}Channel-Hold-Accum", str(self.hold_accum)),
        ]


@dataclass
class CallerProfile:
    """switch_caller_profile_t as switch_caller_profile_event_set_data writes it; empty strings
    are left out, as FreeSWITCH does."""

    direction: str = "outbound"
    logical_direction: str = "outbound"
    username: str = ""
    dialplan: str = ""
    caller_id_name: str = ""
    caller_id_number: str = ""
    orig_caller_id_name: str = ""
    orig_caller_id_number: str = ""
    callee_id_name: str = ""
    callee_id_number: str = ""
    network_addr: str = ""
    ani: str = ""
    aniii: str = ""
    destination_number: str = ""
    uuid: str = ""
    source: str = "src/switch_ivr_originate.c"
    context: str = "default"
    rdnis: str = ""
    channel_name: str = ""
    profile_index: str = ""
    times: ProfileTimes = field(default_factory=ProfileTimes)

    def headers(self, prefix: str) -> Headers:
        # The Caller- prefix doubles up on the caller-id fields (Caller-Caller-ID-Name).
        fields = [
            ("Username", self.username),
            ("Dialplan", self.dialplan),
            ("Caller-ID-Name", self.caller_id_name),
            ("Caller-ID-Number", self.caller_id_number),
            ("Orig-Caller-ID-Name", self.orig_caller_id_name),
            ("Orig-Caller-ID-Number", self.orig_caller_id_number),
            ("Callee-ID-Name", self.callee_id_name),
            ("Callee-ID-Number", self.callee_id_number),
            ("Network-Addr", self.network_addr),
            ("ANI", self.ani),
            ("ANI-II", self.aniii),
            ("Destination-Number", self.destination_number),
            ("Unique-ID", self.uuid),
            ("Source", self.source),
            ("Context", self.context),
            ("RDNIS", self.rdnis),
            ("Channel-Name", self.channel_name),
            ("Profile-Index", self.profile_index),
        ]
        headers: Headers = [
            (f"{prefix}Direction", self.direction),
            (f"{prefix}Logical-Direction", self.logical_direction),
        ]
        headers += [(prefix + name, value) for name, value in fields if value]
        headers += self.times.headers(prefix)
        headers += [
            (f"{prefix}Screen-Bit", "true"),
            (f"{prefix}Privacy-Hide-Name", "false"),
            (f"{prefix}Privacy-Hide-Number", "false"),
        ]
        return headers

    def copy(self, **changes: object) -> CallerProfile:
        changes.setdefault("times", replace(self.times))
        return replace(self, **changes)  # type: ignore[arg-type]


class Variables:
    """Channel variables in the order they were set; setting one again moves it to the end."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def set(self, name: str, value: str | int | None) -> None:
        self._values.pop(name, None)
        if value is not None:
            self._values[name] = str(value)

    def update(self, pairs: dict[str, str] | list[tuple[str, str]]) -> None:
        items = pairs.items() if isinstance(pairs, dict) else pairs
        for name, value in items:
            self.set(name, value)

    def touch(self, name: str) -> None:
        """Set a variable again to its own value (moves it to the end), when it exists."""
        if name in self._values:
            self._values[name] = self._values.pop(name)

    def unset(self, name: str) -> None:
        self._values.pop(name, None)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def headers(self) -> Headers:
        return [(f"variable_{name}", value) for name, value in self._values.items()]


@dataclass
class Channel:
    """One leg's event-visible data."""

    uuid: str
    name: str
    caller: CallerProfile
    variables: Variables = field(default_factory=Variables)
    state: str = "CS_INIT"
    state_number: int = 2
    call_state: str = "DOWN"
    answer_state: str = "ringing"
    hit_dialplan: bool = False
    hangup_cause: str | None = None
    has_media: bool = False
    other_type: str | None = None  # originator | originatee
    other: CallerProfile | None = None
    presence_id: str = ""

    @property
    def call_uuid(self) -> str:
        return self.variables.get("call_uuid") or self.uuid

    def channel_data(self) -> Headers:
        headers: Headers = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", str(self.state_number)),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.caller.direction),
            ("Presence-Call-Direction", self.caller.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.call_uuid),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.has_media:
            headers += CODEC_HEADERS
        headers += self.caller.headers("Caller-")
        if self.other is not None and self.other_type:
            headers.append(("Other-Type", self.other_type))
            headers += self.other.headers("Other-Leg-")
        return headers

    def event_headers(self, event_name: str, with_variables: bool | None = None) -> Headers:
        """What switch_channel_event_set_data adds to an event of this channel."""
        headers = self.channel_data()
        if with_variables is None:
            with_variables = event_name in EVENTS_WITH_VARIABLES
        if with_variables:
            headers += self.variables.headers()
        return headers
