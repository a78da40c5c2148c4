"""A visitor's requests through a widget, each answered as (HTTP status, JSON body).

Placing a call, in this order: the widget exists and is enabled (404 ``unknown_widget``); the
page's Origin is one of its origins (403 ``origin_not_allowed``); the number is one of the
widget's countries (422 ``not_supported``) and well formed (400 ``invalid_number``); the challenge
is ours, for this widget, unexpired and never used (400 ``challenge_failed``, spent either way
once valid); the abuse limits per widget, per visitor address and per visitor number (429
``try_later`` with ``retry_after``); then the account's own checks exactly as the seed API runs
them (coverage, Do-Not-Call, credits, flood, the key's limits: c2c.calls.placement), the call
ringing the visitor first and then the widget's callee, which must still be one of the
account's own numbers. A refusal says only what the visitor can act on: ``not_supported`` (this
number), ``try_later``, ``unavailable`` (anything of the account's or ours).

The visitor then follows the call with a token (c2c.widgets.tokens) that reads its state and
nothing else: ``ringing_you``, ``connecting``, ``connected``, ``ended``.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from c2c.calls.account_cache import TtlCache
from c2c.calls.placement import CallPlacer
from c2c.calls.request import ClickToCallRequest
from c2c.config import Config
from c2c.domain.states import CallState
from c2c.errors import StoreError
from c2c.numbers import PhoneNumber, parse_phone, split_e164
from c2c.store import Account, Store
from c2c.store.widgets import Limit, OverLimit, Widget
from c2c.widgets.challenge import Challenges
from c2c.widgets.tokens import call_token, read_call_token

log = logging.getLogger(__name__)

CHALLENGE_KEY = "widget-challenge"
TOKEN_KEY = "widget-call-token"
TOKEN_AFTER_END = 600  # seconds a token still reads an ended call
PRUNE_ONE_IN = 100  # requests between prunings of spent challenges and old counters, on average
MAX_NATIONAL_LENGTH = 20

# The seed API's codes as a visitor sees them.
REFUSALS: Mapping[int, tuple[int, str]] = {
    2: (503, "unavailable"),  # the account's credit
    3: (422, "not_supported"),  # a number on the Do-Not-Call list
    4: (503, "unavailable"),
    5: (503, "unavailable"),  # the key disabled
    6: (429, "try_later"),  # flood protection, the key's limits
    7: (422, "not_supported"),  # the visitor's area
    8: (422, "not_supported"),  # the visitor's country
    9: (503, "unavailable"),  # the widget's callee no longer covered
    10: (503, "unavailable"),
    11: (503, "unavailable"),
}
# A call's state as the visitor sees it.
PUBLIC_STATES = {
    CallState.QUEUED.value: "ringing_you",
    CallState.CALLER_RINGING.value: "ringing_you",
    CallState.CALLER_ANSWERED.value: "connecting",
    CallState.BRIDGED.value: "connected",
    CallState.ENDED.value: "ended",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    widget: Widget | None = None  # set when the origin is one of the widget's (CORS allows it)

    @property
    def result(self) -> str:
        return str(self.body.get("error", "placed"))


def refused(status: int, error: str, widget: Widget | None = None, **extra: Any) -> Answer:
    return Answer(status, {"error": error, **extra}, widget)


def visitor_scope(address: str | None) -> str:
    """The visitor's address as a limit counts it: IPv4 whole, IPv6 by its /64 (one host
    gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "ip:unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"ip:{ip.ipv4_mapped or ip}" if ip.version == 6 else f"ip:{ip}"


class WidgetService:
    def __init__(self, config: Config, store: Store, placer: CallPlacer,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._placer = placer
        self._clock = clock
        self._challenges = Challenges(lambda: store.widgets.secret(CHALLENGE_KEY),
                                      config.widget_challenge_max,
                                      config.widget_challenge_seconds, clock)
        ttl = config.account_cache_seconds
        self._widgets: TtlCache[Widget] = TtlCache(store.widgets.get, ttl)
        self._accounts: TtlCache[Account] = TtlCache(
            lambda account_id: store.accounts.find(int(account_id)), ttl)

    def allowed(self, widget_id: str, origin: str | None) -> Answer:
        """The widget if it may be used from ``origin`` (status 200), else the refusal."""
        widget = self._widgets.get(widget_id) if _plausible_id(widget_id) else None
        if widget is None or not widget.enabled:
            return refused(404, "unknown_widget")
        if origin is None or origin not in widget.origins:
            return refused(403, "origin_not_allowed")
        return Answer(200, {}, widget)

    def describe(self, widget_id: str, origin: str | None) -> Answer:
        """What the page needs to draw the widget: the countries a visitor may give."""
        answer = self.allowed(widget_id, origin)
        if answer.widget is None:
            return answer
        return Answer(200, {"countries": list(answer.widget.countries)}, answer.widget)

    def challenge(self, widget_id: str, origin: str | None) -> Answer:
        answer = self.allowed(widget_id, origin)
        if answer.widget is None:
            return answer
        return Answer(200, self._challenges.issue(widget_id), answer.widget)

    def place(self, widget_id: str, origin: str | None, body: object,
              client: str | None) -> Answer:
        answer = self.allowed(widget_id, origin)
        widget = answer.widget
        if widget is None:
            return answer
        fields = body if isinstance(body, dict) else {}
        country, national = fields.get("country_code"), fields.get("phone_number")
        if (not isinstance(country, str) or not isinstance(national, str)
                or len(national) > MAX_NATIONAL_LENGTH):
            return refused(400, "invalid_number", widget)
        if country.removeprefix("+") not in widget.countries:
            return refused(422, "not_supported", widget)
        try:
            visitor = parse_phone(country.removeprefix("+"), national)
        except ValueError:
            return refused(400, "invalid_number", widget)
        solved = self._challenges.verify(widget.id, fields.get("solution"))
        if solved is None or not self._store.widgets.spend_challenge(solved.salt_sha256,
                                                                      solved.expires_at):
            return refused(400, "challenge_failed", widget)
        limits = [Limit(visitor_scope(client), self._config.widget_per_ip_per_hour),
                  Limit(f"n:{visitor.digits}", self._config.widget_per_number_per_hour)]
        if widget.max_per_hour is not None:
            limits.append(Limit(f"w:{widget.id}", widget.max_per_hour))
        try:
            self._store.widgets.count(limits, now=self._clock())
        except OverLimit as over:
            log.info("widget %s: %s over its hourly limit", widget.id, over.scope.split(":")[0])
            return refused(429, "try_later", widget, retry_after=over.retry_after)
        if random.randrange(PRUNE_ONE_IN) == 0:
            self._prune()
        return self._place_call(widget, visitor)

    def _place_call(self, widget: Widget, visitor: PhoneNumber) -> Answer:
        account = self._accounts.get(str(widget.account_id))
        if account is None or widget.callee not in account.own_numbers:
            log.warning("widget %s: its callee +%d is not one of account %d's own numbers; "
                        "refusing its calls", widget.id, widget.callee, widget.account_id)
            return refused(503, "unavailable", widget)
        callee = split_e164(widget.callee)
        request = ClickToCallRequest(
            api_key="", caller=visitor, callee=callee, max_duration=widget.max_minutes, caller_id="",
            callback_url=widget.callback_url, secret=widget.id)
        placement = self._placer.place_for(account, request)
        if placement.code != 0 or placement.call_id is None:
            log.info("widget %s: the call was refused with code %d (%s)", widget.id,
                     placement.code, placement.message)
            status, error = REFUSALS.get(placement.code, (503, "unavailable"))
            extra = {"retry_after": self._config.flood_seconds or 60} if status == 429 else {}
            return refused(status, error, widget, **extra)
        token = call_token(self._store.widgets.secret(TOKEN_KEY), widget.id, placement.call_id)
        log.info("widget %s: call %s placed", widget.id, placement.call_id)
        return Answer(201, {"token": token, "state": "ringing_you"}, widget)

    def status(self, token: str, origin: str | None) -> Answer:
        """The state of the call a token names, for a page of its widget."""
        read = read_call_token(self._store.widgets.secret(TOKEN_KEY), token)
        if read is None:
            return refused(404, "unknown_call")
        widget_id, call_id = read
        answer = self.allowed(widget_id, origin)
        if answer.widget is None:
            return answer
        row = self._store.calls.get(call_id)
        if row is None or (row["state"] == CallState.ENDED.value and float(
                row["ended_at"] or row["created_at"]) + TOKEN_AFTER_END < self._clock()):
            return refused(404, "unknown_call", answer.widget)
        return Answer(200, {"state": PUBLIC_STATES.get(row["state"], "connecting")},
                      answer.widget)

    def _prune(self) -> None:
        try:
            self._store.widgets.prune(now=self._clock())
        except StoreError as exc:  # housekeeping: the next request tries again
            log.warning("pruning the widgets' counters failed: %s", exc)


def _plausible_id(widget_id: str) -> bool:
    return 1 <= len(widget_id) <= 32 and widget_id.isascii() and widget_id.replace(
        "_", "").replace("-", "").isalnum()

