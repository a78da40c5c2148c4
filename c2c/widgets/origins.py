"""The origins a widget's page may be served from, and the countries its visitors may give (pure).

An origin is what browsers send in the Origin header: ``scheme://host[:port]``, lower case, no
path, the port only when it is not the scheme's default. The CLI normalises what the operator
types to that form, so the comparison at request time is an exact string match.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGINS = 20


def normalise_origin(raw: str) -> str:
    """``raw`` as browsers spell it in an Origin header; ValueError when it is not an origin."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not an origin: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{raw!r} is not an origin (https://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{raw!r} is not an origin: no path, query or credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    shown_port = f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{shown_port}"


def parse_origins(raw: str) -> tuple[str, ...]:
    """A comma list of origins, normalised, in order, without repeats."""
    origins: list[str] = []
    for item in raw.split(","):
        if item.strip():
            origin = normalise_origin(item)
            if origin not in origins:
                origins.append(origin)
    if not origins:
        raise ValueError("at least one origin is needed")
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"at most {MAX_ORIGINS} origins")
    return tuple(origins)


def parse_countries(raw: str) -> tuple[str, ...]:
    """A comma list of country calling codes (1-3 digits, no '+' needed), in order."""
    countries: list[str] = []
    for item in raw.split(","):
        code = item.strip().removeprefix("+")
        if not code:
            continue
        if not (code.isascii() and code.isdigit() and 1 <= len(code) <= 3 and code[0] != "0"):
            raise ValueError(f"{item.strip()!r} is not a country calling code (1-3 digits)")
        if code not in countries:
            countries.append(code)
    if not countries:
        raise ValueError("at least one country code is needed")
    return tuple(countries)
