"""What a switch event says about one of our calls (pure: an Event in, a small value out).

Settlement must not depend on having seen every intermediate event (a listener may take over
mid-call), so a leg's HANGUP_COMPLETE is read for everything it carries: answer and bridge times,
billsec, causes, and on the caller's leg what became of the callee when its channel never existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from c2c.domain.confirmation import Confirmation
from c2c.esl.protocol import Event

CALL_ID_VARIABLE = "c2c_call_id"
LEG_VARIABLE = "c2c_leg"
CALLER, CALLEE = "caller", "callee"


# The variables leg_end_from_variables reads, which leg_end has the event find in one pass (any
# other is still read, by a lookup of its own), rather than decoding all of a hangup's ~100.
LEG_END_VARIABLES = (
    CALL_ID_VARIABLE,
    LEG_VARIABLE,
    "hangup_cause",
    "billsec",
    "originate_disposition",
    "last_bridge_hangup_cause",
    "sip_term_status",
    "answer_uepoch",
    "bridge_uepoch",
    "end_uepoch",
    "group_confirm_key",
    "group_confirm_file",
    "group_dial_status",
)


@dataclass(frozen=True)
class LegEnd:
    """A leg's CHANNEL_HANGUP_COMPLETE, reduced to what settlement needs."""

    call_id: str
    leg: str  # CALLER or CALLEE
    cause: str
    sip_status: str | None
    answered_at: float | None
    bridged_at: float | None
    ended_at: float
    billsec: int
    # Caller leg only: the callee's fate when the callee's channel may never have existed.
    bridge_failure_cause: str | None = None
    # Caller leg only: what became of "press 1 to connect" (None: not asked, or not answered).
    confirm: Confirmation | None = None


@dataclass(frozen=True)
class LegMoment:
    """CHANNEL_PROGRESS / CHANNEL_ANSWER / CHANNEL_BRIDGE of one of our legs."""

    call_id: str
    leg: str
    event_name: str
    at: float


@dataclass(frozen=True)
class JobResult:
    """A BACKGROUND_JOB: ``+OK <uuid>`` or ``-ERR <CAUSE>``."""

    job_uuid: str
    ok: bool
    cause: str | None  # the -ERR cause, None on success


def call_of(event: Event) -> tuple[str, str] | None:
    """(call id, leg) when the event is about one of our channels."""
    call_id = event.get(f"variable_{CALL_ID_VARIABLE}")
    leg = event.get(f"variable_{LEG_VARIABLE}")
    if not call_id or leg not in (CALLER, CALLEE):
        return None
    return call_id, leg


def _event_time(event: Event) -> float:
    raw = event.get("Event-Date-Timestamp")
    try:
        return int(raw) / 1_000_000 if raw else 0.0
    except ValueError:
        return 0.0


def leg_end(event: Event) -> LegEnd | None:
    """A leg's CHANNEL_HANGUP_COMPLETE; the same rules as its CDR (leg_end_from_variables)."""
    return leg_end_from_variables(
        event.variables(reading=LEG_END_VARIABLES),
        hangup_cause=event.get("Hangup-Cause"),
        fallback_end=_event_time(event),
    )


def leg_end_from_variables(
    variables: Mapping[str, str],
    *,
    hangup_cause: str | None = None,
    fallback_end: float = 0.0,
) -> LegEnd | None:
    """A leg's end from its channel variables (decoded), None when the leg is not one of ours.

    ``hangup_cause`` is the event's Hangup-Cause header when there is one (it wins over the
    hangup_cause variable, as in the event path); ``fallback_end`` is the end time in seconds to
    use when the channel has no end_uepoch.
    """
    call_id = variables.get(CALL_ID_VARIABLE)
    leg = variables.get(LEG_VARIABLE)
    if not call_id or leg not in (CALLER, CALLEE):
        return None
    cause = hangup_cause or variables.get("hangup_cause") or "NONE"
    try:
        billsec = int(variables.get("billsec") or 0)
    except ValueError:
        billsec = 0
    answered_at = uepoch_seconds(variables.get("answer_uepoch"))
    failure = confirm = None
    if leg == CALLER:
        # The callee's fate when its channel may never have existed (DESIGN.md section 2).
        disposition = variables.get("originate_disposition")
        failure = variables.get("last_bridge_hangup_cause") or (
            disposition if disposition and disposition not in ("SUCCESS", "call accepted") else None
        )
        confirm = confirm_of(variables, answered=answered_at is not None)
    return LegEnd(
        call_id=call_id,
        leg=leg,
        cause=cause,
        sip_status=variables.get("sip_term_status") or None,
        answered_at=answered_at,
        bridged_at=uepoch_seconds(variables.get("bridge_uepoch")),
        ended_at=uepoch_seconds(variables.get("end_uepoch")) or fallback_end,
        billsec=max(billsec, 0),
        bridge_failure_cause=failure,
        confirm=confirm,
    )


def confirm_of(variables: Mapping[str, str], *, answered: bool) -> Confirmation | None:
    """What the caller's leg, at its end, says of "press 1 to connect" (recordings 19, 20).

    FreeSWITCH marks the leg that pressed the key ``group_dial_status=winner`` and clears its
    ``group_confirm_*``; a leg that answered and never pressed ends with them still set and no
    status, and the callee is never dialed. A caller that never answered was never asked.
    """
    if (variables.get("group_dial_status") or "").strip().lower() == "winner":
        return Confirmation.CONFIRMED
    if answered and (variables.get("group_confirm_key") or variables.get("group_confirm_file")):
        return Confirmation.UNCONFIRMED
    return None


def uepoch_seconds(raw: str | None) -> float | None:
    """A ``*_uepoch`` value (microseconds) as seconds; None when 0, missing or not a number."""
    try:
        micros = int(raw) if raw else 0
    except ValueError:
        return None
    return micros / 1_000_000 if micros > 0 else None


def leg_moment(event: Event) -> LegMoment | None:
    ours = call_of(event)
    if ours is None:
        return None
    return LegMoment(ours[0], ours[1], event.name or "", _event_time(event))


def job_result(event: Event) -> JobResult | None:
    job_uuid = event.get("Job-UUID")
    if not job_uuid or event.get("Job-Command") != "originate":
        return None
    body = (event.body or "").strip()
    if body.startswith("+OK"):
        return JobResult(job_uuid, True, None)
    cause = body[4:].strip() if body.startswith("-ERR") else body
    return JobResult(job_uuid, False, cause.split()[0] if cause else "UNKNOWN")
