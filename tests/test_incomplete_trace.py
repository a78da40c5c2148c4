"""An incomplete trace keeps what is known, in-process: the simulator over TCP, a real store, the
event holder and its sweep (AppHarness), with liveness and grace of a second or two.

- a frozen switch: its bridged call settles estimated, answered, within the bound; when the
  switch thaws the call's late hangup corrects the estimate once;
- a switch stopped during talk: its talking calls settle estimated, a ringing one not answered;
  a CDR posted afterwards (twice) corrects once, through the ledger;
- a switch back within the bound, its channels still up: reconciled, not settled;
- the store unreachable while a hangup is heard (MariaDB behind a proxy): the held event is
  applied when the store is back, and the call settles with its measured outcome.

Waits yield to gevent (the harness explains why); none is a sleep-and-hope.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import quote

import gevent
import pytest

from c2c.esl.connection import SwitchState
from c2c.store import Store, make_engine
from c2c.store.invariants import check_invariants
from tests.support.app_harness import AppHarness, gevent_wait
from tests.support.faults import TcpProxy

LIVENESS = 1.0
GRACE = 2
CDR_PASSWORD = "cdr-pw"


def harness(store_url: str, grace: int = GRACE, **config: Any) -> AppHarness:
    h = AppHarness(store_url, background=True, esl_timeout=0.5, esl_liveness_seconds=LIVENESS,
                   settle_grace=grace, flood_seconds=0, cdr_password=CDR_PASSWORD, **config)
    h.switch.heartbeat_interval = 0.2  # real seconds at time scale 1
    return h


def place(h: AppHarness, callee: str = "6465550999", max_duration: str = "10") -> str:
    """A call whose caller answers after 1 s; the default callee 0999 answers after 1 s and
    never hangs up; 0408 never answers."""
    key = h.account(credits=100).api_key
    result = h.get({"api_key": key, **h.numbers(caller=None, callee=None), "max_duration":
                    max_duration, "callee_phone_number": callee})
    assert h.code(result) == 0
    return result.headers["x-c2c-call-id"]


def wait_state(h: AppHarness, call_id: str, state: str) -> dict[str, Any]:
    return h.wait_until(lambda: (c := h.store.calls.get(call_id))["state"] == state and c,
                        10, f"call {state}")


def clean(h: AppHarness) -> None:
    assert check_invariants(h.store, now=time.time()) == []


def test_a_frozen_switchs_bridged_call_settles_estimated_then_its_late_hangup_corrects_it(
    store_url, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="c2c")
    with harness(store_url) as h:
        call_id = place(h)
        bridged = wait_state(h, call_id, "bridged")
        gevent.sleep(1.5)  # they talk
        frozen_at = time.time()
        h.switch.faults.stall = True  # the host froze: the socket open, nothing comes back
        settled = h.wait_settled(call_id, timeout=20)
        waited = time.time() - frozen_at
        assert (settled["answered"], settled["reason"], settled["minutes"]) == (True, None, 1)
        assert settled["estimated"] and settled["corrected_at"] is None
        # Billed up to its switch's last sign of life: a heartbeat at most 0.2 s before it froze.
        talked = frozen_at - bridged["bridged_at"]
        assert int(talked) - 1 <= settled["billsec"] <= int(talked)
        # Within the bound, far from its deadline (ring + limit + grace: minutes away).
        assert waited < LIVENESS + GRACE + 5 < settled["deadline_at"] - frozen_at
        assert settled["caller_uuid"] in h.switch.channels  # the call itself goes on
        assert any("out of reach, not heard from" in r.getMessage() for r in caplog.records)
        clean(h)

        h.switch.faults.stall = False  # it thaws; the two are still talking
        owner = h.owners[0]
        h.wait_until(lambda: owner._events is not None and owner._events.live, 15, "heard again")
        h.switch.api_command(f"uuid_kill {settled['caller_uuid']}")
        corrected = h.wait_until(
            lambda: (c := h.store.calls.get(call_id))["corrected_at"] is not None and c,
            10, "the estimate corrected")
        assert corrected["billsec"] > settled["billsec"]  # the switch's own count
        assert (corrected["answered"], corrected["minutes"]) == (True, 1)
        assert corrected["callee_hangup_cause"] is not None
        assert len(h.store.ledger.for_call(call_id)) == 1  # 1 minute either way: no correction
        clean(h)


def test_a_switch_stopped_during_talk_bills_its_talking_calls_as_estimated(store_url) -> None:
    with harness(store_url) as h:
        talking = [place(h) for _ in range(2)]
        ringing = place(h, callee="6465550408")
        bridged = {call_id: wait_state(h, call_id, "bridged") for call_id in talking}
        wait_state(h, ringing, "caller_answered")
        gevent.sleep(1.2)
        stopped_at = time.time()
        h.switch.stop(hangup=False)  # died hard: no hangup, no CDR, connections refused
        for call_id in talking:
            got = h.wait_settled(call_id, timeout=20)
            assert (got["answered"], got["minutes"], got["reason"], got["estimated"]) == (
                True, 1, None, True)
            assert 1 <= got["billsec"] <= int(stopped_at - bridged[call_id]["bridged_at"])
        got = h.wait_settled(ringing, timeout=20)
        assert (got["answered"], got["minutes"], got["reason"], got["estimated"]) == (
            False, 0, 0, True)
        assert time.time() - stopped_at < LIVENESS + GRACE + 5
        clean(h)

        # The callee leg's CDR, spooled by the switch and posted when it came back: 95 s
        # talked. Posted twice (a retry): corrected once.
        first = talking[0]
        row = h.store.calls.get(first)
        for _ in range(2):
            result = post_cdr(h, first, row["callee_uuid"], "callee", bridged=row["bridged_at"],
                              billsec=95)
            assert (result.status_code, result.text) == (200, "ok")
        corrected = h.store.calls.get(first)
        assert (corrected["answered"], corrected["minutes"], corrected["billsec"]) == (
            True, 2, 95)
        assert corrected["corrected_at"] is not None and corrected["estimated"]
        kinds = [(r["kind"], r["delta"]) for r in h.store.ledger.for_call(first)]
        assert kinds == [("debit", -1), ("correction", -1)]
        clean(h)


def post_cdr(h: AppHarness, call_id: str, channel: str, leg: str, *, bridged: float,
             billsec: int) -> Any:
    """A leg's mod_xml_cdr POST (encode=true): cdr=<url-encoded XML>."""
    variables = {
        "uuid": channel, "c2c_call_id": call_id, "c2c_leg": leg,
        "hangup_cause": "NORMAL_CLEARING", "sip_term_status": "200", "billsec": str(billsec),
        "answer_uepoch": str(int(bridged * 1e6)), "bridge_uepoch": str(int(bridged * 1e6)),
        "end_uepoch": str(int((bridged + billsec) * 1e6)),
    }
    body = "".join(f"<{name}>{quote(value)}</{name}>" for name, value in variables.items())
    document = (f'<?xml version="1.0"?>\n<cdr core-uuid="x" switchname="fs">'
                f"<variables>{body}</variables></cdr>")
    assert h.client is not None
    return h.client.simulate_post(
        "/internal/cdr", params={"uuid": channel}, body=f"cdr={quote(document)}",
        remote_addr="127.0.0.1",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "Basic " + basic("c2c", CDR_PASSWORD)})


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_switch_back_within_the_bound_with_its_channels_is_not_settled(store_url) -> None:
    with harness(store_url, grace=6) as h:
        call_id = place(h)
        wait_state(h, call_id, "bridged")
        owner = h.owners[0]
        h.switch.faults.stall = True
        h.wait_until(lambda: owner._events.state is not SwitchState.CONNECTED, LIVENESS + 2,
                     "the silent connection given up")
        thawed_at = time.time()
        h.switch.faults.stall = False
        call = h.wait_until(
            lambda: (c := h.store.calls.get(call_id))["alive_at"] and c["alive_at"] >= thawed_at
            and c, 10, "the reconciliation found its channels")
        assert call["state"] == "bridged"
        # Past the bound since it was last heard before the freeze: still not settled.
        gevent_wait(lambda: time.time() > thawed_at + 6 + 1.5, 10, message="the bound passed")
        assert h.store.calls.get(call_id)["state"] == "bridged"
        h.switch.api_command(f"uuid_kill {call['caller_uuid']}")
        got = h.wait_settled(call_id)
        assert got["answered"] and got["estimated"] is None and got["minutes"] == 1
        clean(h)


@pytest.mark.mysql
def test_a_hangup_heard_while_the_store_is_down_is_applied_when_it_is_back(
    mysql_url, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="c2c")
    proxy, proxied = TcpProxy.for_url(mysql_url)
    proxy.start()
    direct = Store(make_engine(mysql_url))
    try:
        # lease 3 s: renewed every second, lost at the first renewal that finds the store down.
        with harness(proxied, grace=120, lease_seconds=3) as h:
            call_id = place(h)
            bridged = wait_state(h, call_id, "bridged")
            # Talk a whole second first: billsec is whole seconds, and a call killed within the
            # second it was bridged bills 0 minutes, which is not what this test is about.
            gevent_wait(lambda: time.time() > bridged["bridged_at"] + 1.2, 5, message="talk")
            owner = h.owners[0]
            lease = f"switch:{h.connection.name}"
            # Right after a renewal, so that the hangup is heard before the next one fails.
            renewed = direct.leases.get(lease).expires_at  # type: ignore[union-attr]
            gevent_wait(lambda: direct.leases.get(lease).expires_at > renewed, 5,  # type: ignore[union-attr]
                        message="a renewal")
            proxy.cut()
            h.switch.api_command(f"uuid_kill {bridged['caller_uuid']}")
            gevent_wait(lambda: owner.events_waiting >= 1, 5, message="the hangup held")
            gevent_wait(lambda: not owner.holding, 5, message="the lease let go")
            assert owner.events_waiting >= 1  # not dropped with the lease
            gevent.sleep(0.5)  # a few more failed attempts
            proxy.restore()
            got = gevent_wait(lambda: (c := direct.calls.get(call_id))["state"] == "ended" and c,
                              20, message="settled")
            assert (got["answered"], got["minutes"], got["reason"]) == (True, 1, None)
            assert got["estimated"] is None  # measured: the held hangups were applied
            assert got["callee_hangup_cause"] == got["caller_hangup_cause"] == "NORMAL_CLEARING"
            assert got["billsec"] >= 0 and got["callee_gone_at"] is not None
            assert owner.events_waiting == 0
            messages = [r.getMessage() for r in caplog.records]
            assert any("not applied, the store is unavailable" in m for m in messages)
            assert any("CHANNEL_HANGUP_COMPLETE applied after" in m for m in messages)
            gevent_wait(lambda: owner.holding, 10, message="listening again")
            assert check_invariants(direct, now=time.time()) == []
    finally:
        direct.dispose()
        proxy.stop()
