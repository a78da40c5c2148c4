"""Misbehaviour on demand, for fault tests. Change the fields of a running FakeSwitch's
``faults`` at any time; each applies to authenticated connections from their next frame on,
except ``frozen``, which applies to every connection at once.

``frozen`` is a host that stops answering without closing anything, as when it loses power or a
firewall or NAT drops the path: connections stay open and new ones are accepted (the kernel does
that), but not one byte is written to any of them (no auth/request, no reply, no event, no
HEARTBEAT) and no command is run. The switch itself goes on: calls progress and end, post their
CDRs, and events (heartbeats too) queue up per connection, as in a TCP send buffer; once thawed,
each connection still open runs its waiting commands and gets what was queued, in order. A
client that closed its side meanwhile is closed quietly. (To stop the calls as well, run the
simulator as a process and SIGSTOP it.)

``stall`` is different: an Event Socket listener that hangs after auth, swallowing its replies
and events for good (new connections still get auth/request and ``+OK accepted``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent.event


def _thawed_event() -> gevent.event.Event:
    event = gevent.event.Event()
    event.set()
    return event


@dataclass
class Faults:
    close_mid_frame: bool = False  # write half of the next frame, then close the socket
    stall: bool = False  # read commands, never answer them, send no events
    error_all: bool = False  # answer every command (and api) with -ERR simulated failure
    drop_every: float | None = None  # close every connection every N real seconds, no notice
    frozen: bool = False  # a frozen host: every connection silent but open (see above)
    _thawed: gevent.event.Event = field(
        default_factory=_thawed_event, init=False, repr=False, compare=False
    )

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "frozen" and "_thawed" in self.__dict__:
            self._sync()

    def __post_init__(self) -> None:
        self._sync()

    def _sync(self) -> None:
        if self.frozen:
            self._thawed.clear()
        else:
            self._thawed.set()

    @property
    def thawed(self) -> gevent.event.Event:
        """Set while not frozen: what a connection waits on."""
        return self._thawed

    def wait_thawed(self, timeout: float | None = None) -> bool:
        """Block until not frozen (True) or ``timeout`` seconds pass (False)."""
        return bool(self._thawed.wait(timeout))

    @property
    def active(self) -> bool:
        return (
            self.close_mid_frame
            or self.stall
            or self.error_all
            or bool(self.drop_every)
            or self.frozen
        )
