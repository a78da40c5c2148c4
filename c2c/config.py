"""The validated configuration, declared once.

Every setting is a ``C2C_*`` environment variable with a documented default. An optional file
(``C2C_CONFIG_FILE``, lines of ``NAME=value``, ``#`` comments) supplies values the environment does
not set. A bad value raises ConfigError naming the variable, so start-up stops with a clear message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import phonenumbers

from c2c.calls.routes import Route, parse_templates, read_routes_file
from c2c.channel_values import check_display_name, check_media
from c2c.domain.credits import parse_credits
from c2c.errors import ConfigError


@dataclass(frozen=True)
class SwitchAddress:
    """One FreeSWITCH Event Socket: ``esl://:PASSWORD@HOST:PORT``."""

    host: str
    port: int
    password: str

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never show the password in logs
        return f"SwitchAddress({self.name})"


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected on/off, true/false, yes/no or 1/0")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _parse_public_url(raw: str) -> str:
    """Blank, or an http(s) URL with a host and no query (a trailing '/' is dropped)."""
    value = raw.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError("expected https://host[:port][/path]")
    return value


def _float_range(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _parse_switches(raw: str) -> tuple[SwitchAddress, ...]:
    switches = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        url = urlsplit(item)
        if url.scheme != "esl" or not url.hostname:
            raise ValueError(f"{item!r} is not esl://:PASSWORD@HOST:PORT")
        try:
            port = url.port or 8021
        except ValueError as exc:
            raise ValueError(f"{url.hostname}: bad port") from exc
        switches.append(SwitchAddress(url.hostname, port, unquote(url.password or "ClueCon")))
    names = [s.name for s in switches]
    if len(set(names)) != len(names):
        raise ValueError("a switch is listed twice")
    return tuple(switches)


def _parse_dial_string(raw: str) -> str:
    # TEMPLATE[|TEMPLATE...], each checked by the originate builder's own rules (c2c.calls.routes).
    return "|".join(parse_templates(raw.strip()))


def _parse_database_url(raw: str) -> str:
    value = raw.strip()
    if not (value.startswith("sqlite:") or value.startswith("mysql+pymysql://")):
        raise ValueError("use sqlite:///PATH or mysql+pymysql://user:pw@host/db")
    if value.startswith("mysql"):
        # Imported here: the store's modules load the database driver, which `c2c demo` and
        # `c2c worker` must not import before gevent patches the sockets.
        from c2c.store.hosts import split_hosts

        try:
            split_hosts(value)
        except ValueError as exc:
            raise ValueError(f"{exc} (several hosts: user:pw@host1:port1,host2:port2/db)") \
                from None
    return value


def _parse_caller_id_number(raw: str) -> str:
    """Blank, 4-15 digits (read per call as from the caller's country), or +E164 whose country
    code phonenumbers knows (the same number for callers of every country)."""
    value = raw.strip()
    if not value:
        return value
    if value.startswith("+"):
        digits = value[1:]
        if not (digits.isascii() and digits.isdigit() and 5 <= len(digits) <= 15):
            raise ValueError("+E164 must be '+' and 5-15 digits")
        try:
            phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError("+E164 does not start with a known country code") from exc
        return value
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 15):
        raise ValueError("blank, 4-15 digits, or +E164")
    return value


def _parse_ringback(raw: str) -> str:
    value = raw.strip()
    if value.lower() in ("auto", "off"):
        return value.lower()
    return check_media(value)


def _parse_media_or_blank(raw: str) -> str:
    value = raw.strip()
    return check_media(value) if value else ""


def _parse_name_or_blank(raw: str) -> str:
    value = raw.strip()
    return check_display_name(value) if value else ""


def _parse_rate(raw: str) -> Decimal:
    rate = parse_credits(raw.strip(), what="rate")
    if rate < 0:
        raise ValueError("a rate must not be negative")
    return rate


def _parse_networks(raw: str) -> tuple[str, ...]:
    import ipaddress

    nets = tuple(part.strip() for part in raw.split(",") if part.strip())
    for net in nets:
        ipaddress.ip_network(net, strict=False)
    return nets


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("C2C_DATABASE_URL", "database_url", "sqlite:///c2c.sqlite3", _parse_database_url,
            "SQLAlchemy URL of the store: sqlite:///PATH or mysql+pymysql://user:pw@host/db."),
    Setting("C2C_SWITCHES", "switches", "esl://:ClueCon@127.0.0.1:8021", _parse_switches,
            "Comma-separated FreeSWITCH Event Sockets, esl://:PASSWORD@HOST:PORT."),
    Setting("C2C_DIAL_STRING", "dial_string", "sofia/gateway/default/+{country_code}{number}",
            _parse_dial_string,
            "Dial-string template, or TEMPLATE|TEMPLATE... tried in order (gateway failover), for "
            "numbers no route matches; placeholders {country_code}, {number}, {e164}."),
    Setting("C2C_ROUTES_FILE", "routes", "", read_routes_file,
            "File of 'PREFIX TEMPLATE[|TEMPLATE...]' lines: a number (E.164 digits) is dialed by "
            "the longest prefix that matches it, else by C2C_DIAL_STRING; blank: no routes."),
    Setting("C2C_CALLER_ID_FOR_CALLER", "caller_id_for_caller", "", _parse_caller_id_number,
            "Number the caller sees on their phone: +E164, or digits read as from the caller's "
            "country; blank: the callee's number."),
    Setting("C2C_CALLER_ID_FORMAT", "caller_id_format", "e164",
            lambda raw: _choice(raw.strip().lower(), ("e164", "digits", "national")),
            "Caller IDs on both legs: e164 (+CCNUMBER), digits (CCNUMBER) or national."),
    Setting("C2C_CALLER_ID_NAME", "caller_id_name", "", _parse_name_or_blank,
            "Display name on both legs (letters, digits, spaces, . & @ # * ! ? / + _ -); "
            "blank: the number shown."),
    Setting("C2C_CALLER_ID_POLICY", "caller_id_policy", "any",
            lambda raw: _choice(raw.strip().lower(), ("any", "own")),
            "any: a request's caller_id may be any number; own: blank or one of the account's "
            "own numbers, else code 4."),
    Setting("C2C_RINGBACK", "ringback", "auto", _parse_ringback,
            "What the answered caller hears while the callee's phone rings (when it sends no "
            "early media): auto (by the caller's country), off, or a tone_stream://, %(...) "
            "tone, local_stream:// or sound file."),
    Setting("C2C_CONFIRM", "confirm", "off",
            lambda raw: _choice(raw.strip().lower(), ("off", "key")),
            "Press 1 to connect: key makes the caller press 1 before the callee is dialed "
            "(per key: c2c keys set --confirm)."),
    Setting("C2C_CONFIRM_PROMPT", "confirm_prompt", "", _parse_media_or_blank,
            "What the caller hears until they press 1: a sound file or tone_stream://; blank: "
            "a 440 Hz beep every second."),
    Setting("C2C_CONFIRM_TIMEOUT", "confirm_timeout", "10", _int_range(3, 60),
            "Seconds from the caller's answer to press 1 before the call ends unconfirmed."),
    Setting("C2C_RING_TIMEOUT", "ring_timeout", "30", _int_range(5, 300),
            "Seconds each leg may ring before it is given up (originate_timeout/leg_timeout)."),
    Setting("C2C_MAX_CALL_MINUTES", "max_call_minutes", "120", _int_range(1, 1440),
            "Operator cap on a call's length in minutes; also the most a call reserves."),
    Setting("C2C_FLOOD_SECONDS", "flood_seconds", "60", _int_range(0, 86400),
            "A phone number may start at most one accepted call per this many seconds."),
    Setting("C2C_DEFAULT_RATE", "default_rate", "1", _parse_rate,
            "Credits per minute for a number no rate prefix matches (`c2c rates`); 1: credits "
            "are minutes."),
    Setting("C2C_BILL_CALLER_LEG", "bill_caller_leg", "off", _parse_bool,
            "Also bill the caller's leg, every started minute from its answer, at the rate of "
            "the caller's number."),
    Setting("C2C_CALLBACK_ALLOW_PRIVATE", "callback_allow_private", "off", _parse_bool,
            "Allow callback URLs on loopback/private/reserved addresses (tests, labs)."),
    Setting("C2C_CALLBACK_HORIZON", "callback_horizon", "86400", _int_range(60, 30 * 86400),
            "Seconds a callback is retried before it is marked failed."),
    Setting("C2C_CALLBACK_TIMEOUT", "callback_timeout", "10", _float_range(0.5, 120),
            "Connect and read timeout of one callback delivery, in seconds."),
    Setting("C2C_SETTLE_GRACE", "settle_grace", "120", _int_range(5, 3600),
            "Seconds a CDR is awaited for a call whose end was not seen (past ring timeout + "
            "time limit, or after a reconciliation) before it settles from what is known; also "
            "how long a switch out of reach may go unheard before its calls do."),
    Setting("C2C_ESL_TIMEOUT", "esl_timeout", "5", _float_range(0.1, 120),
            "Seconds to wait for connecting to a switch and for each command's reply."),
    Setting("C2C_ESL_LIVENESS_SECONDS", "esl_liveness_seconds", "45", _float_range(0.2, 3600),
            "A switch connection silent this long (no event, no HEARTBEAT, no probe answered) is "
            "dropped and reconnected; the switch is not live meanwhile."),
    Setting("C2C_ORIGINATE_VERDICT_SECONDS", "originate_verdict_seconds", "1", _float_range(0, 10),
            "Most a request waits for its originate's first word (the caller's leg created, or the "
            "switch's refusal, which sends the call once to another switch); 0: no wait, no retry."),
    Setting("C2C_LEASE_SECONDS", "lease_seconds", "6", _int_range(2, 300),
            "How long a worker's hold on a switch's event listener lasts unless renewed."),
    Setting("C2C_ACCOUNT_CACHE_SECONDS", "account_cache_seconds", "2", _float_range(0, 60),
            "How long a worker remembers an api_key's account (0: look it up every request)."),
    Setting("C2C_CDR_USER", "cdr_user", "c2c", str, "HTTP basic user for /internal/cdr."),
    Setting("C2C_CDR_PASSWORD", "cdr_password", "", str,
            "HTTP basic password for /internal/cdr; blank disables the endpoint."),
    Setting("C2C_INTERNAL_NETWORKS", "internal_networks", "127.0.0.0/8,::1/128", _parse_networks,
            "Networks allowed to reach /internal/* (comma-separated CIDRs)."),
    Setting("C2C_TRUSTED_PROXIES", "trusted_proxies", "127.0.0.0/8,::1/128", _parse_networks,
            "Proxies (nginx) whose X-Forwarded-For names the client for keys' --allow-ip "
            "(comma-separated CIDRs; blank: the TCP peer is the client)."),
    Setting("C2C_PUBLIC_URL", "public_url", "", _parse_public_url,
            "The API's address as web pages reach it (https://c2c.example.com): the widget "
            "snippet `c2c widgets create` prints loads /widget.js from it."),
    Setting("C2C_WIDGET_PER_IP_PER_HOUR", "widget_per_ip_per_hour", "5", _int_range(1, 100_000),
            "Calls a visitor's address (an IPv6 address's /64) may ask for through widgets per "
            "clock hour."),
    Setting("C2C_WIDGET_PER_NUMBER_PER_HOUR", "widget_per_number_per_hour", "3",
            _int_range(1, 1000),
            "Calls through widgets that may ring one visitor's number per clock hour."),
    Setting("C2C_WIDGET_CHALLENGE_MAX", "widget_challenge_max", "100000",
            _int_range(10, 100_000_000),
            "The widget's proof of work: the browser tries up to this many SHA-256 hashes, half "
            "of them on average, before each call."),
    Setting("C2C_WIDGET_CHALLENGE_SECONDS", "widget_challenge_seconds", "300",
            _int_range(10, 3600),
            "How long a widget's challenge may be solved and used (once)."),
    Setting("C2C_BACKGROUND", "background", "workers",
            lambda raw: _choice(raw.strip().lower(), ("workers", "separate")),
            "Where the switches' event listeners and the callback dispatcher run: `workers` "
            "(in every gunicorn worker, beside the API: one command runs everything) or "
            "`separate` (gunicorn workers only answer requests; run `c2c worker`, one or more)."),
    Setting("C2C_LOG_LEVEL", "log_level", "INFO",
            lambda raw: _choice(raw.upper(), ("DEBUG", "INFO", "WARNING", "ERROR")),
            "Logging level."),
)


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Config:
    database_url: str
    switches: tuple[SwitchAddress, ...]
    dial_string: str
    routes: tuple[Route, ...]
    caller_id_for_caller: str
    caller_id_format: str
    caller_id_name: str
    caller_id_policy: str
    ringback: str
    confirm: str
    confirm_prompt: str
    confirm_timeout: int
    ring_timeout: int
    max_call_minutes: int
    flood_seconds: int
    default_rate: Decimal
    bill_caller_leg: bool
    callback_allow_private: bool
    callback_horizon: int
    callback_timeout: float
    settle_grace: int
    esl_timeout: float
    esl_liveness_seconds: float
    originate_verdict_seconds: float
    lease_seconds: int
    account_cache_seconds: float
    cdr_user: str
    cdr_password: str
    internal_networks: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    public_url: str
    widget_per_ip_per_hour: int
    widget_per_number_per_hour: int
    widget_challenge_max: int
    widget_challenge_seconds: int
    background: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every setting from ``environ`` (default os.environ), then C2C_CONFIG_FILE."""
        env = dict(os.environ if environ is None else environ)
        file_values = _read_file(env["C2C_CONFIG_FILE"]) if env.get("C2C_CONFIG_FILE") else {}
        values = {}
        for setting in SETTINGS:
            raw = env.get(setting.env, file_values.get(setting.env, setting.default))
            try:
                values[setting.field] = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{setting.env}={raw!r}: {exc}") from exc
        return cls(**values)

    @classmethod
    def defaults(cls, **overrides: Any) -> Config:
        """The defaults, with some fields replaced (for tests and the demo)."""
        return dataclasses.replace(cls.from_env({}), **overrides)


def _read_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"C2C_CONFIG_FILE={path!r}: {exc.strerror}") from exc
    values = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.startswith("C2C_"):
            raise ConfigError(f"C2C_CONFIG_FILE={path!r}: line {number} is not C2C_NAME=value")
        values[name] = value.strip()
    return values


def describe() -> str:
    """A table of every setting, its default and meaning (for `c2c config` and the README)."""
    rows = [f"{s.env} (default {s.default!r})\n    {s.help}" for s in SETTINGS]
    return "\n".join(rows)
