"""Whether the core lets a new session in: pause flags, sessions-per-second, max-sessions, and
the counters ``status`` and HEARTBEAT report (pure: time comes from the ``now`` it is given).

A leg the switch dials is refused before any channel exists (so with no event at all, and
DESTINATION_OUT_OF_ORDER from sofia) when, checked in this order as
switch_core_session_request_uuid does (FreeSWITCH source, switch_core_session.c):

1. outbound sessions are paused (``fsctl pause`` or ``fsctl pause outbound``, recordings 22, 22b);
2. the core is not ready (``fsctl pause`` sets both directions' flags);
3. this second's budget is spent: it is decremented first and the session refused when it is
   then <= 0, so ``sps N`` admits N-1 sessions a second and refused attempts use it up too
   (recording 23);
4. the sessions up, plus this one, would be more than max-sessions (``count + 1 > max``).

The budget is refilled once a second (of the switch's virtual time) from the limit, and only
then does a new ``fsctl sps`` take effect (23); the refill also notes the last second's figure
(``limit - budget left``, so -998 right after ``sps 2`` lowered a limit of 1000) and the peaks,
whose five-minute versions restart every 300 refills (switch_time.c). ``fsctl pause`` makes
``status`` say "not ready"; ``pause outbound`` alone does not (switch_core_ready needs both
flags, switch_core.c).
"""

from __future__ import annotations

from collections.abc import Callable

PAUSED = "paused"
THROTTLED = "throttled"
FULL = "full"

# Refills in the five-minute window of Session-Per-Sec-FiveMin / Session-Peak-FiveMin.
WINDOW_TICKS = 300
INT32_MAX = 2**31 - 1


class SessionLimits:
    """The admission rules and figures of one switch; ``now()`` gives its time in seconds."""

    def __init__(
        self,
        now: Callable[[], float],
        max_sessions: int = 10_000,
        sps: int = 10_000,
        idle_cpu: float = 98.0,
    ) -> None:
        if max_sessions < 1 or sps < 1:
            raise ValueError("max_sessions and sps must be >= 1")
        self.now = now
        self.max_sessions = max_sessions
        self.sps_total = sps  # the limit
        self.sps = sps  # this second's budget left
        self.sps_last = 0
        self.sps_peak = 0
        self.sps_peak_fivemin = 0
        self.sessions_peak = 0
        self.sessions_peak_fivemin = 0
        self.since_startup = 0  # sessions ever created (switch_core_session_id() - 1)
        self.paused_inbound = False
        self.paused_outbound = False
        self.idle_cpu = idle_cpu
        self.min_idle_cpu = 0.0
        self._window = 0  # refills in the current five-minute window
        self._next_refill = now() + 1.0

    # ---------------------------------------------------------------------------------------
    # state

    @property
    def ready(self) -> bool:
        """switch_core_ready: not when both directions are paused (``fsctl pause``)."""
        return not (self.paused_inbound and self.paused_outbound)

    @property
    def ready_outbound(self) -> bool:
        return not self.paused_outbound

    def pause(self, direction: str | None = None, paused: bool = True) -> None:
        """``fsctl pause|resume [inbound|outbound]``; any other word means both directions."""
        which = (direction or "").lower()
        if which != "outbound":
            self.paused_inbound = paused
        if which != "inbound":
            self.paused_outbound = paused

    def set_sps(self, value: int, count: int = 0) -> int:
        """``fsctl sps N`` with ``count`` sessions up: a positive N becomes the limit (the
        budget follows at the next refill); returns the limit."""
        self.catch_up(count)  # the seconds already past were refilled from the old limit
        if value > 0:
            self.sps_total = min(value, INT32_MAX)
        return self.sps_total

    def set_max_sessions(self, value: int) -> int:
        """``fsctl max_sessions N``: a positive N becomes the limit at once; returns it."""
        if value > 0:
            self.max_sessions = min(value, INT32_MAX)
        return self.max_sessions

    # ---------------------------------------------------------------------------------------
    # admission

    def admit(self, count: int) -> str | None:
        """A new outbound session (every leg the simulator has is one) while ``count`` are up:
        None when it may be created (it is then counted), else why not (PAUSED, THROTTLED,
        FULL)."""
        self.catch_up(count)
        if not self.ready_outbound:
            return PAUSED
        if not self.ready:
            return PAUSED
        self.sps -= 1
        if self.sps <= 0:
            return THROTTLED
        if count + 1 > self.max_sessions:
            return FULL
        self.since_startup += 1
        self.sessions_peak = max(self.sessions_peak, count + 1)
        self.sessions_peak_fivemin = max(self.sessions_peak_fivemin, count + 1)
        return None

    # ---------------------------------------------------------------------------------------
    # the once-a-second refill

    def catch_up(self, count: int) -> None:
        """Apply the refills due by now (lazily: the figures are only read or changed here)."""
        now = self.now()
        if now < self._next_refill:
            return
        due = int((now - self._next_refill) // 1.0) + 1
        self._next_refill += due
        self._refill(count)
        if due > 1:
            self._idle_refills(due - 1, count)

    def tick(self, count: int = 0) -> None:
        """One refill now, as if the second had just ended (tests use it to make ``fsctl sps``
        take effect without waiting for the switch's clock)."""
        self.catch_up(count)
        self._refill(count)
        self._next_refill = self.now() + 1.0

    def _refill(self, count: int) -> None:
        self.sps_last = self.sps_total - self.sps
        if self._window >= WINDOW_TICKS:
            self.sps_peak_fivemin = 0
            self._window = 0
            self.sessions_peak_fivemin = count
        self._window += 1
        self.sps_peak_fivemin = max(self.sps_peak_fivemin, self.sps_last)
        self.sps_peak = max(self.sps_peak, self.sps_last)
        self.sps = self.sps_total

    def _idle_refills(self, ticks: int, count: int) -> None:
        """``ticks`` more refills of seconds in which no session was asked for: each notes
        last = 0 and only the five-minute window moves on."""
        self.sps_last = 0
        before_reset = max(0, WINDOW_TICKS - self._window)
        if ticks <= before_reset:
            self._window += ticks
            return
        self.sps_peak_fivemin = 0
        self.sessions_peak_fivemin = count
        self._window = (ticks - before_reset - 1) % WINDOW_TICKS + 1
