"""What is known about one switch's load, and what the store keeps about each switch (pure values).

Below both c2c.esl (which reads loads off the wire and chooses among switches) and c2c.store
(which shares the event holder's last report and the operator's drain flag between workers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class SwitchLoad:
    """What a switch said about itself in a HEARTBEAT or an ``api status`` (None: not said)."""

    ready: bool | None = None  # False: paused (`fsctl pause`) or shutting down: refuses originates
    sessions: int | None = None  # sessions up now (each two-leg call is two)
    max_sessions: int | None = None  # max-sessions
    sps_limit: int | None = None  # sessions-per-second limit (`status` only)
    sps_last: int | None = None  # sessions started in the last second
    sps_left: int | None = None  # this second's budget left (HEARTBEAT Session-Per-Sec)
    idle_cpu: float | None = None  # percent
    min_idle_cpu: float | None = None  # min-idle-cpu: below it the switch refuses new sessions

    def fill_from(self, older: SwitchLoad | None) -> SwitchLoad:
        """This reading, with what it does not say taken from an older one (a HEARTBEAT has no
        sessions-per-second limit, `status` no budget left)."""
        if older is None:
            return self
        missing = {
            field.name: getattr(older, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is None
        }
        return dataclasses.replace(self, **missing) if missing else self


@dataclass(frozen=True)
class SwitchRecord:
    """One switch's row in the store: the operator's drain flag, and the last report of the
    worker holding its events (times are Unix seconds on that worker's clock)."""

    name: str
    draining: bool = False
    holder: str | None = None  # the event holder that wrote the report
    connected: bool | None = None  # its event connection was up (TCP + auth)
    heard_at: float | None = None  # last sign of life: a connect or a HEARTBEAT
    load_at: float | None = None  # when ``load`` was read
    load: SwitchLoad | None = None
