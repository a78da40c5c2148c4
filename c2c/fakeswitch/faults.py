"""Misbehaviour on demand, for fault tests. Change the fields of a running FakeSwitch's
``faults`` at any time; each applies to authenticated connections from their next frame on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    close_mid_frame: bool = False  # write half of the next frame, then close the socket
    stall: bool = False  # read commands, never answer them, send no events
    error_all: bool = False  # answer every command (and api) with -ERR simulated failure
    drop_every: float | None = None  # close every connection every N real seconds, no notice

    @property
    def active(self) -> bool:
        return self.close_mid_frame or self.stall or self.error_all or bool(self.drop_every)
