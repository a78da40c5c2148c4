"""What one worker knows about one switch beyond its connection: load, drain, shutdown, our pace.

Fed by this worker's `status` probes, by the HEARTBEATs when this worker holds the switch's events,
and by the store's shared row (the holder's last report and the operator's drain flag), read every
couple of seconds. In memory only, changed by quick calls from any greenlet; never does I/O.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from c2c.domain.switch_state import SwitchLoad, SwitchRecord

ORIGINATE_WINDOW_SECONDS = 1.0  # FreeSWITCH refills its sessions-per-second budget each second


class SwitchHealth:
    def __init__(
        self,
        name: str,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._clock = clock
        self._monotonic = monotonic
        self.load: SwitchLoad | None = None
        self.load_at: float | None = None  # Unix time of the freshest reading in ``load``
        self.draining = False
        self._shutting_down_at: float | None = None
        self._originates: deque[float] = deque()

    def __repr__(self) -> str:
        return f"SwitchHealth({self.name}, {self.load!r})"

    # -- load -------------------------------------------------------------------------------

    def note_load(self, load: SwitchLoad, at: float | None = None) -> None:
        """A reading taken at ``at`` (default now). The fresher reading wins field by field;
        what it does not say is kept from the other."""
        at = self._clock() if at is None else at
        if self.load_at is None or at >= self.load_at:
            self.load = load.fill_from(self.load)
            self.load_at = at
        else:
            self.load = (self.load or SwitchLoad()).fill_from(load)
        # A restarted switch that says it is ready again is no longer shutting down.
        if load.ready and self._shutting_down_at is not None and at > self._shutting_down_at:
            self._shutting_down_at = None

    def note_shutting_down(self, at: float | None = None) -> None:
        """The switch announced its shutdown (SHUTDOWN event, or the disconnect notice)."""
        self._shutting_down_at = self._clock() if at is None else at

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down_at is not None

    def apply_record(self, record: SwitchRecord) -> None:
        """The store's shared row: the drain flag, and the event holder's last reading."""
        self.draining = record.draining
        if record.load is not None and record.load_at is not None:
            self.note_load(record.load, record.load_at)

    # -- our own pace -----------------------------------------------------------------------

    def note_originate(self) -> None:
        now = self._monotonic()
        self._forget_before(now - ORIGINATE_WINDOW_SECONDS)
        self._originates.append(now)

    def originates_last_second(self) -> int:
        self._forget_before(self._monotonic() - ORIGINATE_WINDOW_SECONDS)
        return len(self._originates)

    def _forget_before(self, horizon: float) -> None:
        originates = self._originates
        while originates and originates[0] <= horizon:
            originates.popleft()
