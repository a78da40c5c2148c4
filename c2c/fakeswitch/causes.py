"""Hangup causes: names, numbers, Q.850 codes and the SIP status mappings sofia uses.

From esl-reference.md section 4 (switch_types.h, switch_channel.c, sofia_glue.c).
"""

from __future__ import annotations

from c2c.domain.hangup_causes import CAUSE_NUMBERS

_CAUSE_NAMES = {number: name for name, number in CAUSE_NUMBERS.items()}

# sofia_glue_sip_cause_to_freeswitch
_SIP_TO_CAUSE: dict[int, str] = {
    200: "NORMAL_CLEARING",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    407: "CALL_REJECTED",
    603: "CALL_REJECTED",
    608: "CALL_REJECTED",
    607: "UNWANTED",
    404: "UNALLOCATED_NUMBER",
    485: "NO_ROUTE_DESTINATION",
    604: "NO_ROUTE_DESTINATION",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    413: "INTERWORKING",
    414: "INTERWORKING",
    416: "INTERWORKING",
    420: "INTERWORKING",
    421: "INTERWORKING",
    423: "INTERWORKING",
    505: "INTERWORKING",
    513: "INTERWORKING",
    480: "NO_USER_RESPONSE",
    400: "NORMAL_TEMPORARY_FAILURE",
    481: "NORMAL_TEMPORARY_FAILURE",
    500: "NORMAL_TEMPORARY_FAILURE",
    503: "NORMAL_TEMPORARY_FAILURE",
    486: "USER_BUSY",
    600: "USER_BUSY",
    484: "INVALID_NUMBER_FORMAT",
    488: "INCOMPATIBLE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    502: "NETWORK_OUT_OF_ORDER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    415: "SERVICE_NOT_IMPLEMENTED",
    501: "SERVICE_NOT_IMPLEMENTED",
    482: "EXCHANGE_ROUTING_ERROR",
    483: "EXCHANGE_ROUTING_ERROR",
    487: "ORIGINATOR_CANCEL",
    428: "NO_IDENTITY",
    429: "BAD_IDENTITY_INFO",
    437: "UNSUPPORTED_CERTIFICATE",
    438: "INVALID_IDENTITY",
}

SIP_REASON_PHRASES: dict[int, str] = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
}

# DIALSTATUS labels that differ from the cause name (switch_ivr_originate.c's switch on the
# cause; recording 22b: a bridge leg that could not be created, DESTINATION_OUT_OF_ORDER)
_DIALSTATUS = {
    "USER_BUSY": "BUSY",
    "NO_ANSWER": "NOANSWER",
    "ORIGINATOR_CANCEL": "CANCEL",
    "CALL_REJECTED": "DONTCALL",
    "DESTINATION_OUT_OF_ORDER": "INVALIDARGS",
    "INVALID_PROFILE": "INVALIDARGS",
}

# When the &bridge leg fails with one of these, A carries on and ends NORMAL_CLEARING (CHAN:4954)
CONTINUE_CAUSES = frozenset({"NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"})


def is_cause(name: str) -> bool:
    return name.upper() in CAUSE_NUMBERS


def cause_from_string(text: str | None, default: str = "NORMAL_CLEARING") -> str:
    """switch_channel_str2cause: a name (any case) or a number; anything else gives the default."""
    if not text:
        return default
    upper = text.strip().upper()
    if upper in CAUSE_NUMBERS:
        return upper
    if upper.isdigit():
        return _CAUSE_NAMES.get(int(upper), default)
    return default


def q850(cause: str) -> int:
    """hangup_cause_q850: the cause number when it is a Q.850 one (<= 127), else 16."""
    number = CAUSE_NUMBERS.get(cause, 16)
    return number if number <= 127 else 16


def cause_number(cause: str) -> int:
    return CAUSE_NUMBERS.get(cause, 0)


def sip_status_to_cause(status: int) -> str:
    return _SIP_TO_CAUSE.get(status, "NORMAL_UNSPECIFIED")


def sip_reason_phrase(status: int) -> str:
    return SIP_REASON_PHRASES.get(status, "Unknown")


def dialstatus(cause: str) -> str:
    return _DIALSTATUS.get(cause, cause)
