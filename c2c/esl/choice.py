"""Which switch takes the next call: a pure function of what this worker knows about each.

A switch is *refused* (never chosen) while it is not connected, not live, shutting down, paused,
draining, or full: its sessions plus the new call's two would pass 90% of its max-sessions, which
leaves room for the callee's leg of calls whose caller already answered (a switch at its limit
refuses that leg, recording 23b). Among the others, a switch is *avoided* (chosen only when every
usable one is) when this worker has spent its sessions-per-second budget there in the last second
(`sps N` admits N-1 new sessions a second, and each call is two, recording 23) or its idle CPU is
under its min-idle-cpu (it refuses new sessions). Both are soft: the budget is counted per worker,
and an estimate must not turn away calls the switch could take. Then the least used, as a share
of max-sessions when every candidate's is known, else by calls in flight; ties in config order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from c2c.domain.switch_state import SwitchLoad

SESSIONS_PER_CALL = 2  # the caller's leg and the callee's
SESSION_CEILING = 0.9  # share of max-sessions above which a switch takes no new call


@dataclass(frozen=True)
class SwitchView:
    """One switch as this worker sees it at the moment of choosing."""

    name: str
    index: int = 0  # its place in C2C_SWITCHES: the last tie-break
    connected: bool = False  # this worker's command connection is up (TCP + auth)
    live: bool = False  # ...and the switch answered within the liveness window
    draining: bool = False
    shutting_down: bool = False
    load: SwitchLoad | None = None
    in_flight: int = 0  # our unsettled calls there
    sent_last_second: int = 0  # originates this worker sent there in the last second

    @property
    def used_sessions(self) -> int:
        """At least what the switch last said, and at least our calls in flight there (its
        figure may be seconds old)."""
        reported = self.load.sessions if self.load is not None else None
        return max(reported or 0, SESSIONS_PER_CALL * self.in_flight)

    @property
    def utilisation(self) -> float | None:
        """Used sessions as a share of max-sessions; None when max-sessions is unknown."""
        limit = self.load.max_sessions if self.load is not None else None
        if not limit:
            return None
        return self.used_sessions / limit


def refusal(view: SwitchView) -> str | None:
    """Why ``view`` cannot take a call now, or None."""
    load = view.load or SwitchLoad()
    if not view.connected:
        return "shutting down" if view.shutting_down else "not connected"
    if not view.live:
        return "not live"
    if view.shutting_down:
        return "shutting down"
    if load.ready is False:
        return "paused"
    if view.draining:
        return "draining"
    if load.max_sessions is not None:
        if view.used_sessions + SESSIONS_PER_CALL > SESSION_CEILING * load.max_sessions:
            return f"full ({view.used_sessions} of {load.max_sessions} sessions)"
    return None


def avoidance(view: SwitchView) -> str | None:
    """Why ``view`` should take a call only if no other can, or None."""
    load = view.load or SwitchLoad()
    if load.sps_limit is not None:
        budget = load.sps_limit - 1
        if SESSIONS_PER_CALL * (view.sent_last_second + 1) > budget:
            return f"sessions-per-second budget spent ({view.sent_last_second} sent)"
    if load.idle_cpu is not None and load.min_idle_cpu and load.idle_cpu < load.min_idle_cpu:
        return f"idle CPU {load.idle_cpu:g}% under its minimum {load.min_idle_cpu:g}%"
    return None


def choose(views: Iterable[SwitchView]) -> SwitchView | None:
    """The switch for the next call, or None when every one is refused."""
    usable = [view for view in views if refusal(view) is None]
    if not usable:
        return None
    by_share = all(view.utilisation is not None for view in usable)

    def rank(view: SwitchView) -> tuple[bool, float, int, int]:
        share = view.utilisation if by_share else None
        return (avoidance(view) is not None, share or 0.0, view.in_flight, view.index)

    return min(usable, key=rank)


def describe_refusals(views: Sequence[SwitchView]) -> str:
    """One line naming why each switch was refused, for logs and errors."""
    return ", ".join(f"{view.name} {refusal(view) or 'usable'}" for view in views) or "none"
