"""End to end, what people notice (issue 11): press 1 to connect, the caller IDs each phone is
shown, and flood protection that lets many visitors reach a business's own number. Real gunicorn
(gevent workers), the simulator as a separate process over TCP, a callback receiver, the public
HTTP API.

The simulator's default scenario (c2c/fakeswitch/scenarios.py): a caller ending 0701 answers and
presses 1, one ending 0700 is a mailbox that answers and never presses a key, every other caller
presses 1 a second after answering; a callee answers after 1 s and hangs up 5 s later.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import gevent
import pytest

from c2c.esl.protocol import Event
from tests.fixtures.fakeswitch.helpers import RawClient
from tests.support.deployment import Deployment

pytestmark = pytest.mark.slow

CONFIRMING_CALLER = "2125550701"
MAILBOX_CALLER = "2125550700"


def _listen(d: Deployment) -> RawClient:
    """A plain Event Socket client on the simulator, seeing every leg as it is created."""
    assert d.simulator is not None
    client = RawClient(d.simulator.port)
    client.login(d.simulator.password)
    assert client.command("event plain CHANNEL_CREATE").reply_text.startswith("+OK")
    return client


def _legs_of(client: RawClient, call_id: str) -> dict[str, Event]:
    """Every CHANNEL_CREATE of the call's legs the client has received so far (the call has
    settled, so its legs were created long ago: the client's reader only needs a turn)."""
    gevent.sleep(0.3)
    return {
        event.get("variable_c2c_leg") or "": event
        for event in client.events()
        if event.name == "CHANNEL_CREATE" and event.get("variable_c2c_call_id") == call_id
    }


def _query(request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(request.target).query,
                                                          keep_blank_values=True).items()}


def test_press_1_caller_ids_and_own_numbers(tmp_path, store_url):
    env = {"C2C_CONFIRM": "key", "C2C_CONFIRM_TIMEOUT": "5", "C2C_FLOOD_SECONDS": "60"}
    with Deployment(tmp_path, store_url, workers=2, env=env) as d:
        client = _listen(d)
        try:
            # A business's sales line is the account's own number.
            assert d.store.own_numbers.add(d.account_id, 12125550199).changed

            # -- press 1 to connect -------------------------------------------------------
            code, confirmed = d.place(caller_phone_number=CONFIRMING_CALLER,
                                      callee_phone_number="2125550199")
            assert code == 0
            code, mailbox = d.place(caller_phone_number=MAILBOX_CALLER,
                                    callee_phone_number="2125550199")
            assert code == 0  # an own number: the second visitor within the window is let in

            call = d.wait_settled(confirmed)
            assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None)
            assert call["confirm"] == "confirmed"

            call = d.wait_settled(mailbox)
            assert (call["answered"], call["minutes"], call["reason"]) == (False, 0, 3)
            assert call["confirm"] == "unconfirmed"
            assert call["caller_answered_at"] is not None  # the mailbox did pick up
            assert call["callee_answered_at"] is None and call["callee_hangup_cause"] is None
            assert call["caller_hangup_cause"] in ("NO_ANSWER", "ALLOTTED_TIMEOUT")
            assert set(_legs_of(client, mailbox)) == {"caller"}  # the callee was never dialed
            assert set(_legs_of(client, confirmed)) == {"caller", "callee"}

            # -- caller IDs in E.164, both legs, with a name ----------------------------------
            code, international = d.place(caller_phone_number="2125550123",
                                          callee_phone_number="2079460188",
                                          callee_country_code="44")
            assert code == 0
            call = d.wait_settled(international)
            assert call["answered"]
            legs = _legs_of(client, international)
            # The callee sees the caller's number with + and country code, and the caller the
            # callee's; the name is the same formatted number, not a name the switch invents.
            assert legs["callee"].get("Caller-Caller-ID-Number") == "+12125550123"
            assert legs["callee"].get("Caller-Caller-ID-Name") == "+12125550123"
            assert legs["caller"].get("Caller-Caller-ID-Number") == "+442079460188"

            # -- flood: an own number is exempt, any other number is not -------------------
            first = d.place(caller_phone_number="3125550111", callee_phone_number="2125550199")
            second = d.place(caller_phone_number="3125550112", callee_phone_number="2125550199")
            assert (first[0], second[0]) == (0, 0)
            other = d.place(caller_phone_number="3125550113", callee_phone_number="2125550177")
            again = d.place(caller_phone_number="3125550114", callee_phone_number="2125550177")
            assert (other[0], again[0]) == (0, 6)
            assert again[1] is None  # a refused request leaves no call

            # Every accepted call is called back once, with what the customer needs.
            placed = [confirmed, mailbox, international, first[1], second[1], other[1]]
            for call_id in placed:
                d.wait_settled(call_id)
            d.wait_callbacks(len(placed))
            by_call = {call_id: d.callbacks_for(call_id) for call_id in placed}
            assert all(len(requests) == 1 for requests in by_call.values()), by_call
            assert _query(by_call[mailbox][0])["answered"] == "0"
            assert _query(by_call[mailbox][0])["reason"] == "3"
            assert _query(by_call[mailbox][0])["minutes"] == "0"
            assert _query(by_call[confirmed][0])["answered"] == "1"
        finally:
            client.close()
