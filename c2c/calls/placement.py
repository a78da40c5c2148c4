"""Accepting a click-to-call request: the checks in DESIGN.md's order, the reservation, the originate.

Order: 1 (key), 5 (disabled), 4 (malformed; with C2C_CALLER_ID_POLICY=own also a caller_id that is
not one of the account's own numbers), 8/7/10/9 (coverage), 3 (DNC), 2 (credits), 6 (flood); 11
when the store or every switch is unreachable. The store's accept transaction decides 3, 2 and 6
atomically; everything before it only reads, so a rejected request leaves nothing behind.

Where the call goes and how its originate gets there (its first word awaited, a refusal before
any leg existed sent once to another switch, 11 when none takes it) is c2c.calls.sending.

A request with an idempotency key (the Idempotency-Key header or request_id) goes through
c2c.calls.idempotent once 1, 5 and the parameters' 4 are decided: a duplicate replays the first
request's answer and places nothing.

Per call, from the account and the config: whether the caller must press 1 (the key's own
setting, else C2C_CONFIRM), which of its numbers are the account's own (no flood stamp or check
for them), and what each phone is shown and hears (c2c.calls.caller_id, c2c.calls.tones).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from c2c.callbacks.address_guard import check_url_host
from c2c.calls.accept_groups import AcceptGroups
from c2c.calls.account_cache import AccountCache
from c2c.calls.caller_id import POLICY_OWN, caller_id_allowed, shown_ids
from c2c.calls.idempotent import IdempotentRequests, fingerprint, idempotency_key
from c2c.calls.originate import (
    OriginateSpec,
    PressToConnect,
    build_originate,
    confirm_setup_seconds,
)
from c2c.calls.request import (
    ClickToCallRequest,
    api_key_from,
    first_coverage_failure,
    validate_clicktocall,
)
from c2c.calls.routes import RouteTable
from c2c.calls.sending import CallSender
from c2c.calls.tones import confirm_prompt, ringback_for
from c2c.config import Config
from c2c.domain.networks import address_in
from c2c.errors import RequestRejected, StoreError, SwitchUnavailable
from c2c.esl.connection import EslConnection
from c2c.esl.switches import Switches
from c2c.store import Account, NewCall, Pricing, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    code: int
    message: str = ""
    call_id: str | None = None
    replayed: bool = False  # the answer of an earlier request with the same idempotency key


class CallPlacer:
    def __init__(self, config: Config, store: Store, switches: Switches,
                 clock: Callable[[], float] = time.time,
                 on_retry: Callable[[str], None] | None = None) -> None:
        """``on_retry``: told what became of each refused originate (c2c.calls.sending)."""
        self._config = config
        self._store = store
        self._clock = clock
        self._accounts = AccountCache(store.accounts.find_by_key, config.account_cache_seconds)
        self._routes = RouteTable.build(config.routes, config.dial_string)
        self._sender = CallSender(config, store, switches, clock, on_retry=on_retry)
        self._accepts = AcceptGroups(functools.partial(
            store.accept_calls,
            flood_seconds=config.flood_seconds,
            max_call_minutes=config.max_call_minutes,
            ring_timeout=config.ring_timeout,
            settle_grace=config.settle_grace,
            pricing=Pricing(config.default_rate, config.bill_caller_leg),
        ))
        self._idempotent = IdempotentRequests(store.idempotency, clock)

    def place(self, params: list[tuple[str, str]],
              idempotency_header: str | None = None, client: str | None = None) -> Placement:
        """The answer to a request; ``idempotency_header``: its Idempotency-Key, if any;
        ``client``: the client's address (c2c.domain.networks.client_address), for keys that
        may call only from some networks."""
        return self._answer(lambda: self._place(params, idempotency_header, client))

    def place_for(self, account: Account, request: ClickToCallRequest) -> Placement:
        """A request its caller authenticated some other way (a widget, c2c.widgets.service):
        the account's enablement (5), then every check of place() after it, in order."""
        def work() -> Placement:
            if not account.enabled:
                return Placement(5, "api_key disabled")
            return self._place_valid(account, request)

        return self._answer(work)

    def _answer(self, work: Callable[[], Placement]) -> Placement:
        try:
            return work()
        except RequestRejected as rejected:
            return Placement(rejected.code, rejected.message)
        except StoreError as exc:
            log.warning("store unavailable, answering 11: %s", exc)
            return Placement(11, "store unavailable")
        except SwitchUnavailable as exc:
            log.warning("no switch available, answering 11: %s", exc)
            return Placement(11, "no switch available")
        except Exception:  # the contract: never a 500, never a traceback to the customer
            log.exception("unexpected error placing a call; answering 11")
            return Placement(11, "internal error")

    def _place(self, params: list[tuple[str, str]], idempotency_header: str | None,
               client: str | None) -> Placement:
        api_key = api_key_from(params)
        if not api_key:
            return Placement(1, "missing api_key")
        account = self._accounts.get(api_key)
        if account is None:
            return Placement(1, "unknown api_key")
        if account.limits.allow_ips and not address_in(client, account.limits.allow_ips):
            # As if the key were unknown (1): a leaked key is useless from elsewhere.
            return Placement(1, "api_key not allowed from this address")
        if not account.enabled:
            return Placement(5, "api_key disabled")
        request = validate_clicktocall(params)
        key = idempotency_key(request.request_id, idempotency_header)
        if key is None:
            return self._place_valid(account, request)
        # The first request with the key places (its exceptions answered here, so that its
        # answer is what gets kept); a duplicate gets that answer.
        return self._idempotent.answer(
            account.id, key, fingerprint(params),
            lambda call_id: self._answer(lambda: self._place_valid(account, request, call_id)),
            Placement,
        )

    def _place_valid(self, account: Account, request: ClickToCallRequest,
                     call_id: str | None = None) -> Placement:
        """The checks after 1, 5 and the parameters' 4, the accept and the originate; the call
        is ``call_id`` (an idempotent request's, chosen when it claimed its key) or a new id."""
        if request.callback_url and not self._config.callback_allow_private:
            self._check_callback_host(request.callback_url)
        if request.status_callback_url and not self._config.callback_allow_private:
            self._check_callback_host(request.status_callback_url)
        if self._config.caller_id_policy == POLICY_OWN and not caller_id_allowed(
            request.caller_id, request.caller, account.own_numbers
        ):
            # A malformed request (4) under this policy: decided before coverage (8, 7, 10, 9).
            return Placement(4, "caller_id is not one of the account's own numbers")
        rules = self._store.coverage.rules()
        failed = first_coverage_failure(request, rules.country_supported, rules.area_supported)
        if failed is not None:
            return Placement(failed, "not covered")
        # Do-Not-Call (3), credits (2) and flood (6) are decided by the accept transaction, in
        # that order, from one read, on current data (a cached account's balance may be seconds
        # old); its reservation re-checks the credit under the row's lock.
        try:
            connection = self._sender.choose()
        except SwitchUnavailable:
            # Rare: answer 3 before 11 all the same, as the order of the checks wants.
            if self._store.dnc.contains_any([request.caller.e164_int, request.callee.e164_int]):
                return Placement(3, "number on the Do-Not-Call list")
            raise
        now = self._clock()
        call_id = call_id or str(uuid.uuid4())
        job_uuid, caller_uuid, callee_uuid = self._sender.new_ids(connection)
        confirm = self._confirm(account)
        new_call = NewCall(
            id=call_id,
            account_id=account.id,
            caller=request.caller,
            callee=request.callee,
            caller_id=request.caller_id or request.caller.national,
            callback_url=request.callback_url,
            secret=request.secret,
            max_duration=request.max_duration,
            status_callback_url=request.status_callback_url,
            status_events=request.status_events,
            switch=connection.name,
            job_uuid=job_uuid,
            caller_uuid=caller_uuid,
            callee_uuid=callee_uuid,
            confirm=confirm,
            setup_seconds=confirm_setup_seconds(self._config.confirm_timeout) if confirm else 0,
            flood_exempt=frozenset(
                n for n in (request.caller.e164_int, request.callee.e164_int)
                if n in account.own_numbers
            ),
        )
        accepted = self._accepts.accept(account.id, new_call, now)
        switch = self._originate(connection, new_call, request, accepted.max_minutes)
        log.info("call %s accepted on %s (%d min reserved)", call_id, switch,
                 accepted.max_minutes)
        return Placement(0, "accepted", call_id)

    def _confirm(self, account: Account) -> bool:
        """Press 1 to connect: the key's own setting (c2c keys set --confirm on|off), else
        C2C_CONFIRM (default)."""
        if account.confirm is not None:
            return account.confirm
        return self._config.confirm == "key"

    def _check_callback_host(self, url: str) -> None:
        """Refuse (4) a callback host that resolves to a private or reserved address; the
        dispatcher checks again on the address it actually connects to."""
        try:
            check_url_host(url)
        except OSError as exc:
            raise RequestRejected(4, f"callback host does not resolve: {exc}") from exc

    def _originate(self, connection: EslConnection, call: NewCall, request: ClickToCallRequest,
                   max_minutes: int) -> str:
        """Send the call's originate (c2c.calls.sending); the switch it is on."""
        config = self._config
        shown = shown_ids(
            request.caller_id,
            request.caller,
            request.callee,
            fmt=config.caller_id_format,
            name=config.caller_id_name,
            for_caller=config.caller_id_for_caller,
        )
        confirm = None
        if call.confirm:
            confirm = PressToConnect(
                prompt=confirm_prompt(config.confirm_prompt, config.confirm_timeout),
                timeout=config.confirm_timeout,
            )
        spec = OriginateSpec(
            call_id=call.id,
            caller=request.caller,
            callee=request.callee,
            caller_uuid=call.caller_uuid,
            callee_uuid=call.callee_uuid,
            caller_id_for_callee=shown.to_callee_number,
            caller_id_for_caller=shown.to_caller_number,
            ring_timeout=config.ring_timeout,
            time_limit_seconds=max_minutes * 60,
            caller_id_name_for_callee=shown.to_callee_name,
            caller_id_name_for_caller=shown.to_caller_name,
            ringback=ringback_for(config.ringback, request.caller.country_code),
            confirm=confirm,
        )
        # Each leg is dialed by its own number's route (C2C_ROUTES_FILE, else C2C_DIAL_STRING).
        caller_templates = self._routes.choose(request.caller).templates
        callee_templates = self._routes.choose(request.callee).templates

        def command_for(caller_uuid: str, callee_uuid: str) -> str:
            legs = dataclasses.replace(spec, caller_uuid=caller_uuid, callee_uuid=callee_uuid)
            return build_originate(legs, caller_templates, callee_templates)

        return self._sender.send(connection, call, command_for)
