"""Idempotent click-to-call requests (issue 13): a retried request with the same key answers what
the first one answered, and places nothing.

The rules, where the issue leaves them to us:

- **The key** is the ``Idempotency-Key`` header or the ``request_id`` parameter: 1-64 printable
  ASCII characters, compared exactly (case matters), scoped to the account. Both may be given
  only with the same value. An empty header is malformed (it asks for idempotency and names no
  key); a blank ``request_id`` is no key, as blank means "not given" for every optional
  parameter. A malformed key is code 4.
- **Its place in the checks:** after 1 and 5 (a key belongs to an account, so it needs a valid,
  enabled api_key; those answers are never recorded) and after the parameters' own checks for 4
  (a malformed request is answered as such, whatever its key); before everything that can place
  a call. Requests without a key run exactly as before.
- **The parameters compared** are every known parameter but ``api_key`` and the key itself, as
  sorted (name, value) pairs, hashed: their order, unknown parameters, the method (GET or a form
  POST) and the answer's mode (text or JSON) do not matter; a blank value differs from an absent
  one. The same key with other parameters answers 4 (and changes nothing).
- **What is kept** for 24 hours from the first request: its code (0, 2, 3, 6, 7, 8, 9, 10) and
  call id. Not kept, so the key stays free for the next try: 11 (retry later: nothing was placed,
  or the call row says otherwise), 4 from a check that runs after the claim (the callback host's
  DNS, the caller-ID policy) and 1/5 should the account change during the request. A kept
  rejection (2 or 6 say "retry later" too) is final for its key: try again with a new key.
- **A duplicate that arrives while the first is still at it** waits for the first's answer,
  polling the store, for up to DUPLICATE_WAIT_SECONDS, and then answers 11 (retry later; the
  retry gets the first's answer). Should the first give its key up (11), a waiting duplicate
  claims it and runs the checks itself.
- **A claim left unanswered** for STALE_CLAIM_SECONDS (its worker died mid-request, or the store
  failed as it recorded) is resolved from the calls table by the next request with the key: its
  call row exists, so the key answers 0 with that call; or none does, and the new request places.

Concurrent duplicates across workers and hosts are decided by the store's primary key
(c2c.store.idempotency): exactly one inserts the key's row and places the call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import gevent

from c2c.calls.request import API_KEY, KNOWN_PARAMETERS, MALFORMED, REQUEST_ID
from c2c.errors import RequestRejected, StoreError
from c2c.store.idempotency import IdempotencyKeys, KeyAnswer, KeyState, KeyTimes

log = logging.getLogger(__name__)

KEY_TTL_SECONDS = 24 * 3600
# Far above the longest a request can legitimately take (the accept's queue gives up after 60 s,
# an originate and its retry on another switch take seconds), so a claim this old was abandoned.
STALE_CLAIM_SECONDS = 120.0
# How long a duplicate waits for the first request's answer (which normally takes milliseconds,
# up to C2C_ORIGINATE_VERDICT_SECONDS) before it answers 11.
DUPLICATE_WAIT_SECONDS = 10.0
POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.2

KEPT_CODES = frozenset({0, 2, 3, 6, 7, 8, 9, 10})
MAX_KEY_LENGTH = 64
_FINGERPRINT_VERSION = "c2c-idempotency-v1"


class Answer(Protocol):
    @property
    def code(self) -> int: ...

    @property
    def call_id(self) -> str | None: ...


AnswerT = TypeVar("AnswerT", bound=Answer)
# Builds an answer: (code, message for the log, call id, replayed).
MakeAnswer = Callable[[int, str, str | None, bool], AnswerT]


def idempotency_key(request_id: str | None, header: str | None) -> str | None:
    """The request's key (None: not an idempotent request); RequestRejected 4 when malformed.
    ``request_id`` was validated with the other parameters (c2c.calls.request)."""
    if header is None:
        return request_id
    if not 1 <= len(header) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in header):
        raise RequestRejected(MALFORMED, "Idempotency-Key must be 1-64 printable ASCII characters")
    if request_id is not None and request_id != header:
        raise RequestRejected(MALFORMED, "Idempotency-Key and request_id differ")
    return header


def fingerprint(params: Iterable[tuple[str, str]]) -> str:
    """The SHA-256 (hex) of a valid request's parameters in canonical form: the known ones but
    the api_key and the idempotency key, sorted. Call it only once the request has passed
    validation (no known parameter repeated, all printable ASCII)."""
    pairs = sorted(
        (name, value) for name, value in params
        if name in KNOWN_PARAMETERS and name not in (API_KEY, REQUEST_ID)
    )
    canonical = json.dumps([_FINGERPRINT_VERSION, pairs], separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class IdempotentRequests:
    def __init__(
        self,
        keys: IdempotencyKeys,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = gevent.sleep,
        wait_seconds: float = DUPLICATE_WAIT_SECONDS,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._wait_seconds = wait_seconds

    def answer(self, account_id: int, key: str, params_sha256: str,
               place: Callable[[str], AnswerT], make: MakeAnswer[AnswerT]) -> AnswerT:
        """The first request's answer, replayed, or ``place(call_id)``'s if this request is the
        first (it places with that call id). StoreError goes up (the request answers 11)."""
        deadline = self._monotonic() + self._wait_seconds
        call_id = str(uuid.uuid4())
        while True:
            held = self._keys.claim(account_id, key, params_sha256, call_id, self._times())
            if held.state is KeyState.CLAIMED:
                return self._first(account_id, key, call_id, place)
            settled = _settled(held, make)
            if settled is not None:
                _log_settled(account_id, settled)
                return settled
            awaited = self._await(account_id, key, params_sha256, deadline)
            if awaited is None:
                log.info("account %d: a duplicate's first request is still in progress after "
                         "%.0f s; answering 11", account_id, self._wait_seconds)
                return make(11, "the first request with this key is still in progress", None,
                            False)
            settled = _settled(awaited, make)
            if settled is not None:
                _log_settled(account_id, settled)
                return settled
            # FREE: the first gave the key up (or abandoned it): claim it ourselves.

    def _first(self, account_id: int, key: str, call_id: str,
               place: Callable[[str], AnswerT]) -> AnswerT:
        answer = place(call_id)
        try:
            if answer.code in KEPT_CODES:
                kept = self._keys.record(account_id, key, call_id, answer.code,
                                         answer.call_id if answer.code == 0 else None,
                                         self._clock())
                if not kept:  # resolved by another request meanwhile: it found our call row
                    log.warning("account %d: idempotency claim of call %s was resolved by "
                                "another request before its answer (%d) was kept", account_id,
                                call_id, answer.code)
            else:
                self._keys.release(account_id, key, call_id)
        except StoreError as exc:
            # The answer stands; the claim stays "in progress" until it is stale, and is then
            # resolved from the calls table (c2c.store.idempotency).
            log.warning("account %d: the answer %d of call %s could not be kept for its "
                        "idempotency key: %s", account_id, answer.code, call_id, exc)
        return answer

    def _await(self, account_id: int, key: str, params_sha256: str,
               deadline: float) -> KeyAnswer | None:
        """Poll until the key is answered, mismatched or free; None at the deadline."""
        pause = POLL_FIRST_SECONDS
        while True:
            left = deadline - self._monotonic()
            if left <= 0:
                return None
            self._sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX_SECONDS)
            held = self._keys.peek(account_id, key, params_sha256, self._times())
            if held.state is not KeyState.IN_PROGRESS:
                return held

    def _times(self) -> KeyTimes:
        now = self._clock()
        return KeyTimes(now=now, expired_before=now - KEY_TTL_SECONDS,
                        stale_before=now - STALE_CLAIM_SECONDS)


def _settled(held: KeyAnswer, make: MakeAnswer[AnswerT]) -> AnswerT | None:
    if held.state is KeyState.ANSWERED:
        assert held.code is not None
        return make(held.code, "replayed", held.call_id, True)
    if held.state is KeyState.MISMATCH:
        return make(MALFORMED, "Idempotency-Key used before with other parameters", None, False)
    return None


def _log_settled(account_id: int, answer: Answer) -> None:
    if answer.code == MALFORMED:
        log.info("account %d: an idempotency key was used again with other parameters (4)",
                 account_id)
    else:
        log.info("account %d: a repeated request got its first answer again: %d (call %s)",
                 account_id, answer.code, answer.call_id)
