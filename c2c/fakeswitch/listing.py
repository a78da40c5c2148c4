"""``show channels`` and ``show calls``: the core's channels table and its basic_calls view.

FreeSWITCH answers these from SQL tables it fills from events (switch_core_sqldb.c): one
``channels`` row per leg; one ``calls`` row per bridge, from its CHANNEL_BRIDGE to its
CHANNEL_UNBRIDGE. ``show calls`` lists every channel that is not the callee of a bridge, with
its bridged partner's columns as ``b_*`` (empty for a leg on its own): a bridged c2c call is one
row with ``uuid`` and ``call_uuid`` = A, ``b_uuid`` = B (recording 24), a ringing one two rows.
Every value is a string. Two details from recording 24: the originate's A leg has an empty
``ip_addr`` and the &bridge leg the far end's address; ``callee_direction`` is ``SEND`` on both
legs once they are bridged (the CALL_UPDATE events of the bridge).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from c2c.fakeswitch.calls import CALLEE, CALLER, Leg

Row = dict[str, str]

SHOW_CHANNELS_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest application "
    "application_data dialplan context read_codec read_rate read_bit_rate write_codec write_rate "
    "write_bit_rate secure hostname presence_id presence_data accountcode callstate callee_name "
    "callee_num callee_direction call_uuid sent_callee_name sent_callee_num initial_cid_name "
    "initial_cid_num initial_ip_addr initial_dest initial_dialplan initial_context"
).split()

_CALL_SIDE = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest presence_id "
    "presence_data accountcode callstate callee_name callee_num callee_direction"
).split()
SHOW_CALLS_COLUMNS = (
    _CALL_SIDE
    + ["call_uuid", "hostname", "sent_callee_name", "sent_callee_num"]
    + [f"b_{name}" for name in _CALL_SIDE + ["sent_callee_name", "sent_callee_num"]]
    + ["call_created_epoch"]
)

USAGE = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|"
    "channels [count|like <match string>]\n"
)


def channel_row(leg: Leg, hostname: str) -> Row:
    """The leg's row of the channels table."""
    channel = leg.channel
    caller = channel.caller
    created = caller.times.created / 1_000_000
    codec = channel.has_media
    v = channel.variables
    return {
        "uuid": channel.uuid,
        "direction": "outbound",
        "created": _local(created),
        "created_epoch": str(int(created)),
        "name": channel.name,
        "state": channel.state,
        "cid_name": caller.caller_id_name,
        "cid_num": caller.caller_id_number,
        "ip_addr": "" if leg.role == CALLER else caller.network_addr,
        "dest": caller.destination_number,
        "application": v.get("current_application") or "",
        "application_data": v.get("current_application_data") or "",
        "dialplan": "XML",
        "context": caller.context,
        "read_codec": "PCMU" if codec else "",
        "read_rate": "8000" if codec else "",
        "read_bit_rate": "64000" if codec else "",
        "write_codec": "PCMU" if codec else "",
        "write_rate": "8000" if codec else "",
        "write_bit_rate": "64000" if codec else "",
        "secure": "",
        "hostname": hostname,
        "presence_id": "",
        "presence_data": "",
        "accountcode": "",
        "callstate": channel.call_state,
        "callee_name": caller.callee_id_name,
        "callee_num": caller.callee_id_number,
        "callee_direction": "SEND" if caller.times.bridged else "",
        "call_uuid": channel.call_uuid,
        "sent_callee_name": v.get("last_sent_callee_id_name") or "",
        "sent_callee_num": v.get("last_sent_callee_id_number") or "",
        "initial_cid_name": caller.orig_caller_id_name,
        "initial_cid_num": caller.orig_caller_id_number,
        "initial_ip_addr": "",
        "initial_dest": caller.destination_number,
        "initial_dialplan": "XML",
        "initial_context": caller.context,
    }


def call_rows(legs: Iterable[Leg], hostname: str) -> list[Row]:
    """The basic_calls view: bridged pairs as one row, every other leg on its own."""
    rows = []
    for leg in legs:
        if leg.role == CALLEE and leg.peer is not None:
            continue  # shown in its caller's row
        a = channel_row(leg, hostname)
        row = {name: a[name] for name in SHOW_CALLS_COLUMNS if name in a}
        peer = leg.peer if leg.role == CALLER else None
        b = channel_row(peer, hostname) if peer is not None else None
        for name in _CALL_SIDE + ["sent_callee_name", "sent_callee_num"]:
            row[f"b_{name}"] = b[name] if b is not None else ""
        bridged = leg.channel.caller.times.bridged
        row["call_created_epoch"] = str(bridged // 1_000_000) if b is not None else ""
        rows.append({name: row[name] for name in SHOW_CALLS_COLUMNS})
    return rows


def show(args: str, legs: Iterable[Leg], hostname: str) -> str:
    """``show channels|calls [count | like <text>] [as json]``, as mod_commands answers."""
    words = args.split()
    if not words or words[0] not in ("channels", "calls"):
        return USAGE
    if words[0] == "calls":
        rows, columns = call_rows(legs, hostname), SHOW_CALLS_COLUMNS
    else:
        rows, columns = [channel_row(leg, hostname) for leg in legs], SHOW_CHANNELS_COLUMNS
    rest = words[1:]
    if rest[:1] == ["count"]:
        return f"\n{len(rows)} total.\n"
    if len(rest) >= 2 and rest[0] == "like":
        rows = [row for row in rows if any(rest[1] in value for value in row.values())]
        rest = rest[2:]
    if rest[:2] == ["as", "json"]:
        if not rows:
            return '{"row_count": 0}\n'
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
    lines = [",".join(columns)]
    lines += [",".join(row[column] for column in columns) for row in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


def _local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
