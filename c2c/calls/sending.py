"""Where an accepted call goes, and getting its originate there: the switch chosen by its calls
in flight, the originate sent, its first word awaited, and a refusal sent once to another switch.

The request is answered only once the switch's first word on the originate is in (or
C2C_ORIGINATE_VERDICT_SECONDS passed): the caller leg's CHANNEL_CREATE, a millisecond or two
after the bgapi, means the switch took the call; a BACKGROUND_JOB ``-ERR
DESTINATION_OUT_OF_ORDER`` before it means the switch refused the call before any leg existed
(paused, sessions-per-second, max-sessions: c2c.calls.retry). Each worker's command connection
hears only its own calls' two events (EslConnection ``watch_originates``).

A refused call goes once to another switch, with the same call id and fresh leg and job UUIDs
(a switch refuses an origination_uuid it has seen). The store is the truth: the row is pointed at
the new switch (c2c.store.accept.move_call) before anything is sent there. The first switch's
event holder also hears the ``-ERR``; it holds a refusal back a few seconds and then records it
only on a call still on that job (c2c.calls.listener), so a moved call is never settled by it,
and a call whose refusal was recorded first is not moved (it settles failed, as before). When no
other switch takes the call, the accept is undone and the request answers 11. No verdict in time
keeps the call where it is: its events, reconciliation or deadline settle it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from c2c.calls import events as ev
from c2c.calls.retry import Verdict, verdict
from c2c.config import Config
from c2c.domain.timing import QUEUED_RECHECK_SECONDS
from c2c.errors import CommandTimeout, StoreError, SwitchError, SwitchUnavailable
from c2c.esl.connection import EslConnection
from c2c.esl.switches import Switches
from c2c.store import Move, NewCall, Store

log = logging.getLogger(__name__)

IN_FLIGHT_REFRESH_SECONDS = 1.0

# The originate for given caller and callee leg UUIDs (they are in its dial strings).
CommandFor = Callable[[str, str], str]


class CallSender:
    def __init__(
        self,
        config: Config,
        store: Store,
        switches: Switches,
        clock: Callable[[], float] = time.time,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        """``on_retry(result)``: what became of a refused originate: "moved" (to another
        switch), "no_other_switch" or "refused_again" (both answer 11), "not_moved" (the row
        could not be moved: the call settles as failed)."""
        self._on_retry = on_retry
        self._store = store
        self._switches = switches
        self._clock = clock
        self._verdict_seconds = config.originate_verdict_seconds
        self._in_flight_counts: dict[str, int] = {}
        self._in_flight_read_at = float("-inf")

    def choose(self) -> EslConnection:
        """The switch for a new call (Switches.pick); SwitchUnavailable when none can take it."""
        return self._switches.pick(self._in_flight())

    @staticmethod
    def new_ids(connection: EslConnection) -> tuple[str, str, str]:
        """Job, caller leg and callee leg UUIDs for an originate on ``connection``: the first
        two carry its tag, so that their events reach it (and only it); the callee's does not,
        so its CHANNEL_CREATE does not."""
        return connection.tagged_uuid(), connection.tagged_uuid(), str(uuid.uuid4())

    def send(self, connection: EslConnection, call: NewCall, command_for: CommandFor) -> str:
        """Send the accepted ``call``'s originate to ``connection`` (and once more elsewhere if
        that switch refuses it before any leg exists). Returns the switch the call is on. Raises
        ValueError (the command cannot be built) or SwitchUnavailable (no switch took it) after
        undoing the accept."""
        self._count(connection.name, 1)
        if not self._sent(connection, call, command_for):
            return connection.name
        if self._verdict(connection, call) is not Verdict.REFUSED:
            return connection.name
        return self._retry(connection, call, command_for)

    def _sent(self, connection: EslConnection, call: NewCall, command_for: CommandFor) -> bool:
        """bgapi the originate; False when its reply did not come in time (the switch may have
        started the call: it is kept, and events, reconciliation or the deadline settle it)."""
        try:
            command = command_for(call.caller_uuid, call.callee_uuid)
        except ValueError:
            # Not for values validated at start-up; should it happen, nothing reached the switch:
            # undo the accept, and the request answers 11.
            self._store.cancel_call(call.id)
            raise
        leg = call.caller_uuid if self._watching(connection) else None
        try:
            connection.bgapi(command, job_uuid=call.job_uuid, leg_uuid=leg)
        except CommandTimeout:
            log.warning(
                "call %s: no reply to originate within the timeout; left to settle", call.id
            )
            return False
        except SwitchError as exc:
            # Nothing reached the switch (not connected, or refused outright): undo the accept so
            # the customer may retry, and answer 11.
            log.warning("call %s: originate not sent (%s); cancelling", call.id, exc)
            self._store.cancel_call(call.id)
            raise SwitchUnavailable(str(exc)) from exc
        return True

    def _watching(self, connection: EslConnection) -> bool:
        return self._verdict_seconds > 0 and connection.tag is not None

    def _verdict(self, connection: EslConnection, call: NewCall) -> Verdict:
        if not self._watching(connection):
            return Verdict.UNHEARD
        event = connection.originate_verdict(call.job_uuid, call.caller_uuid, self._verdict_seconds)
        if event is None:
            return Verdict.UNHEARD
        if event.name == "CHANNEL_CREATE":
            return verdict(True, None)
        return verdict(False, ev.job_result(event))

    def _retry(self, refused: EslConnection, call: NewCall, command_for: CommandFor) -> str:
        """``refused`` refused the call before any leg existed: once to another switch."""
        self._switches.note_refusal(refused.name)
        try:
            other = self._switches.pick(self._in_flight(), exclude={refused.name})
        except SwitchUnavailable as exc:
            log.warning(
                "call %s: refused by %s before any leg existed, and no other switch can take it",
                call.id,
                refused.name,
            )
            self._tell("no_other_switch")
            return self._give_up(call, refused.name, exc)
        job_uuid, caller_uuid, callee_uuid = self.new_ids(other)
        move = Move(other.name, job_uuid, caller_uuid, callee_uuid)
        try:
            moved = self._store.move_call(
                call.id, call.job_uuid, move, recheck_at=self._clock() + QUEUED_RECHECK_SECONDS
            )
        except StoreError as exc:
            log.warning(
                "call %s: refused by %s and not moved (%s); it settles as failed",
                call.id,
                refused.name,
                exc,
            )
            self._tell("not_moved")
            return refused.name
        if not moved:  # the holder of the first switch recorded the refusal first
            log.warning(
                "call %s: refused by %s, its refusal already recorded; it settles as failed",
                call.id,
                refused.name,
            )
            self._tell("not_moved")
            return refused.name
        log.info(
            "call %s: refused by %s before any leg existed; sent to %s",
            call.id,
            refused.name,
            other.name,
        )
        self._tell("moved")
        self._count(refused.name, -1)
        self._count(other.name, 1)
        retried = dataclasses.replace(
            call,
            switch=other.name,
            job_uuid=job_uuid,
            caller_uuid=caller_uuid,
            callee_uuid=callee_uuid,
        )
        if not self._sent(other, retried, command_for):
            return other.name
        if self._verdict(other, retried) is Verdict.REFUSED:
            self._switches.note_refusal(other.name)
            log.warning("call %s: refused by %s too", call.id, other.name)
            self._tell("refused_again")
            return self._give_up(
                retried, other.name, SwitchUnavailable(f"{refused.name} and {other.name} refused")
            )
        return other.name

    def _tell(self, result: str) -> None:
        if self._on_retry is not None:
            self._on_retry(result)

    def _give_up(self, call: NewCall, switch: str, why: SwitchUnavailable) -> str:
        """No switch takes the call: undo the accept and answer 11 (SwitchUnavailable). Should
        the accept not be undone (the store unreachable, or the row moved on meanwhile), the call
        stays accepted and settles as failed: answer 0 then, and return its switch."""
        try:
            cancelled = self._store.cancel_call(call.id)
        except StoreError as exc:
            log.warning("call %s: accept not undone (%s); it settles as failed", call.id, exc)
            return switch
        if not cancelled:
            log.warning("call %s: accept not undone (no longer queued); it settles", call.id)
            return switch
        self._count(switch, -1)
        raise why

    # -- calls in flight per switch, for choosing one ----------------------------------------

    def _in_flight(self) -> dict[str, int]:
        """Calls in flight per switch, for choosing one: not needed with a single switch, and
        otherwise read at most once a second (a GROUP BY over every running call is too dear
        to run per request; a second-old count balances just as well)."""
        if len(self._switches) < 2:
            return {}
        now = self._clock()
        if now - self._in_flight_read_at >= IN_FLIGHT_REFRESH_SECONDS:
            self._in_flight_counts = self._store.calls.in_flight_by_switch()
            self._in_flight_read_at = now
        return self._in_flight_counts

    def _count(self, switch: str, delta: int) -> None:
        """Counted at once, so that a burst within the refresh interval spreads over the
        switches."""
        self._in_flight_counts[switch] = max(0, self._in_flight_counts.get(switch, 0) + delta)
