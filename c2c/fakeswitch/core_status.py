"""What the core says about itself: the text of ``api status`` and the HEARTBEAT headers (pure).

Formats from recordings 21-24 and FreeSWITCH's source (mod_commands.c status_function,
switch_core.c send_heartbeat): ``status`` prints its figures with ``%d``, the heartbeat with
``%u``, so a negative figure (the budget after a refused burst, the last second right after a
lower ``fsctl sps``) shows there as its unsigned 32-bit value. The heartbeat's Event-Info is
always "System Ready" (send_heartbeat writes it as a constant): a paused switch says so only in
``status`` and ``fsctl pause_check``.
"""

from __future__ import annotations

from c2c.fakeswitch.limits import SessionLimits

STACK_SIZES = "Current Stack Size/Max 240K/8192K"


def duration_text(micros: int) -> str:
    """switch_core_measure_time as status and Up-Time write it: "0 years, 0 days, 1 hour, ..."
    (singular for 1, as the source does)."""
    micros = max(0, micros)
    seconds, mms = divmod(micros, 1_000_000)
    ms, mms = divmod(mms, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    parts = (
        (years, "year"),
        (days, "day"),
        (hours, "hour"),
        (minutes, "minute"),
        (sec, "second"),
        (ms, "millisecond"),
        (mms, "microsecond"),
    )
    return ", ".join(f"{value} {unit}{'' if value == 1 else 's'}" for value, unit in parts)


def heartbeat_version(version: str) -> str:
    """The version as a HEARTBEAT writes it: "1.10.12-release~64bit" for status's
    "1.10.12-release  64bit"."""
    return "~".join(version.split())


def status_text(limits: SessionLimits, count: int, uptime_us: int, version: str) -> str:
    """The whole answer of ``api status`` (recordings 22, 23, 23b, 24)."""
    limits.catch_up(count)
    readiness = "ready" if limits.ready else "not ready"
    return (
        f"UP {duration_text(uptime_us)}\n"
        f"FreeSWITCH (Version {version}) is {readiness}\n"
        f"{limits.since_startup} session(s) since startup\n"
        f"{count} session(s) - peak {limits.sessions_peak}, "
        f"last 5min {limits.sessions_peak_fivemin} \n"
        f"{limits.sps_last} session(s) per Sec out of max {limits.sps_total}, "
        f"peak {limits.sps_peak}, last 5min {limits.sps_peak_fivemin} \n"
        f"{limits.max_sessions} session(s) max\n"
        f"min idle cpu {limits.min_idle_cpu:.2f}/{limits.idle_cpu:.2f}\n"
        f"{STACK_SIZES}\n"
    )


def heartbeat_headers(
    limits: SessionLimits, count: int, uptime_us: int, version: str
) -> list[tuple[str, str]]:
    """The HEARTBEAT headers after the common ones, in recording 21's order."""
    limits.catch_up(count)
    return [
        ("Event-Info", "System Ready"),
        ("Up-Time", duration_text(uptime_us)),
        ("FreeSWITCH-Version", heartbeat_version(version)),
        ("Uptime-msec", str(max(0, uptime_us) // 1000)),
        ("Session-Count", _unsigned(count)),
        ("Max-Sessions", _unsigned(limits.max_sessions)),
        ("Session-Per-Sec", _unsigned(limits.sps)),
        ("Session-Per-Sec-Last", _unsigned(limits.sps_last)),
        ("Session-Per-Sec-Max", _unsigned(limits.sps_peak)),
        ("Session-Per-Sec-FiveMin", _unsigned(limits.sps_peak_fivemin)),
        ("Session-Since-Startup", str(limits.since_startup)),
        ("Session-Peak-Max", _unsigned(limits.sessions_peak)),
        ("Session-Peak-FiveMin", _unsigned(limits.sessions_peak_fivemin)),
        ("Idle-CPU", f"{limits.idle_cpu:f}"),
    ]


def _unsigned(value: int) -> str:
    """printf("%u") of a 32-bit int."""
    return str(value & 0xFFFFFFFF)
