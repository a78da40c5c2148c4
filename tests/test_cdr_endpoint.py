"""`POST /internal/cdr` and `/internal/cdr/json`: who may post, what it answers, each encoding."""

from __future__ import annotations

import base64
import dataclasses
import logging

import falcon
import falcon.testing
import pytest
from gevent.pywsgi import WSGIServer

from c2c.api.cdr import CdrResource
from c2c.calls.cdr import MAX_CDR_BYTES
from c2c.calls.events import LegEnd
from c2c.calls.listener import CallEventListener
from c2c.errors import StoreError
from c2c.fakeswitch.cdr import CdrPoster
from c2c.fakeswitch.server import FakeSwitch
from tests.conftest import ACCEPT_DEFAULTS
from tests.test_cdr import (
    CALL_BRIDGED,
    EXPECTED,
    fixture,
    form_encoded,
    form_encoded_without_double_encoding,
)

USER, PASSWORD = "c2c", "s3cret:with:colons"
INTERNAL = ("127.0.0.0/8", "::1/128", "10.20.0.0/16")
LOCAL = "127.0.0.1"


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_client(apply, password: str = PASSWORD) -> falcon.testing.TestClient:
    app = falcon.App()
    resource = CdrResource(apply, USER, password, INTERNAL)
    app.add_route("/internal/cdr", resource)
    app.add_route("/internal/cdr/json", resource, suffix="json")
    return falcon.testing.TestClient(app)


@pytest.fixture
def applied() -> list[LegEnd]:
    return []


@pytest.fixture
def client(applied) -> falcon.testing.TestClient:
    return make_client(applied.append)


def post(
    client,
    body: bytes,
    content_type: str = "application/x-www-form-urlencoded",
    *,
    path: str = "/internal/cdr",
    auth: str | None = None,
    remote_addr: str = LOCAL,
    uuid: str = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
):
    headers = {"Content-Type": content_type, "Authorization": auth or basic()}
    return client.simulate_post(
        path, body=body, headers=headers, remote_addr=remote_addr, params={"uuid": uuid}
    )


CALLEE_XML = "callee-answered.cdr.xml"


def test_form_encoded_cdr_is_applied(client, applied):
    result = post(client, form_encoded(fixture(CALLEE_XML)))
    assert result.status_code == 200
    assert result.text == "ok"
    assert applied == [EXPECTED[CALLEE_XML]]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/x-www-form-urlencoded",
            form_encoded_without_double_encoding(fixture(CALLEE_XML)),
        ),
        ("application/x-www-form-base64-encoded", b"cdr=" + base64.b64encode(fixture(CALLEE_XML))),
        ("application/x-www-form-plaintext", b"cdr=" + fixture(CALLEE_XML)),
        ("text/xml", fixture(CALLEE_XML)),
    ],
    ids=["urlencoded-old", "base64", "plaintext", "textxml"],
)
def test_each_xml_encoding(client, applied, content_type, body):
    assert post(client, body, content_type).status_code == 200
    assert applied == [EXPECTED[CALLEE_XML]]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", fixture("callee-answered.cdr.json")),
        ("application/x-www-form-urlencoded", form_encoded(fixture("callee-answered.cdr.json"))),
        (
            "application/x-www-form-base64-encoded",
            b"cdr=" + base64.b64encode(fixture("caller-answered-bridged.values-encoded.cdr.json")),
        ),
    ],
    ids=["json", "urlencoded", "base64-values-encoded"],
)
def test_each_json_encoding(client, applied, content_type, body):
    assert post(client, body, content_type, path="/internal/cdr/json").status_code == 200
    assert len(applied) == 1 and applied[0].call_id == CALL_BRIDGED


def test_not_ours_is_accepted_and_not_applied(client, applied):
    result = post(client, form_encoded(fixture("not-ours.cdr.xml")))
    assert (result.status_code, result.text) == (200, "not ours")
    assert applied == []


@pytest.mark.parametrize(
    "auth",
    [
        basic(password="wrong"),
        basic(user="admin"),
        basic(password=PASSWORD + "x"),
        "Bearer " + PASSWORD,
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ],
)
def test_bad_credentials(client, applied, auth, caplog):
    with caplog.at_level(logging.DEBUG):
        result = post(client, form_encoded(fixture(CALLEE_XML)), auth=auth)
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"] == 'Basic realm="c2c-cdr"'
    assert applied == []
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text


def test_missing_credentials(client, applied):
    result = client.simulate_post(
        "/internal/cdr",
        body=form_encoded(fixture(CALLEE_XML)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        remote_addr=LOCAL,
    )
    assert result.status_code == 401
    assert "WWW-Authenticate" in result.headers
    assert applied == []


@pytest.mark.parametrize("peer", ["192.0.2.10", "10.21.0.1", "2001:db8::1", "::ffff:192.0.2.10"])
def test_peer_outside_the_internal_networks_is_refused(client, applied, peer):
    result = post(client, form_encoded(fixture(CALLEE_XML)), remote_addr=peer)
    assert result.status_code == 403
    assert applied == []


def test_no_peer_address_is_refused(client, applied):
    # e.g. a unix socket; falcon's req.remote_addr would have said 127.0.0.1
    result = client.simulate_post(
        "/internal/cdr",
        body=form_encoded(fixture(CALLEE_XML)),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic()},
        extras={"REMOTE_ADDR": ""},
    )
    assert result.status_code == 403


def test_forwarded_for_does_not_make_a_peer_internal(client, applied):
    result = client.simulate_post(
        "/internal/cdr",
        body=form_encoded(fixture(CALLEE_XML)),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": basic(),
            "X-Forwarded-For": "127.0.0.1",
            "Forwarded": "for=127.0.0.1",
        },
        remote_addr="192.0.2.10",
    )
    assert result.status_code == 403


@pytest.mark.parametrize("peer", ["10.20.3.4", "::1", "::ffff:127.0.0.1"])
def test_peers_inside_the_internal_networks(client, applied, peer):
    assert post(client, form_encoded(fixture(CALLEE_XML)), remote_addr=peer).status_code == 200
    assert len(applied) == 1


def test_blank_password_disables_the_endpoint(applied):
    client = make_client(applied.append, password="")
    for auth in (basic(password=""), basic()):
        assert post(client, form_encoded(fixture(CALLEE_XML)), auth=auth).status_code == 404
    assert applied == []


def test_unreadable_cdr_is_400_and_logged(client, applied, caplog):
    with caplog.at_level(logging.WARNING):
        result = post(client, form_encoded(fixture(CALLEE_XML)[:500]))
    assert result.status_code == 400
    assert applied == []
    assert "unreadable" in caplog.text and "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d" in caplog.text


def test_doctype_is_refused(client, applied):
    body = b'<?xml version="1.0"?><!DOCTYPE cdr [<!ENTITY x "y">]><cdr><variables/></cdr>'
    assert post(client, body, "text/xml").status_code == 400
    assert applied == []


def test_unknown_content_type_is_415(client, applied):
    assert post(client, fixture(CALLEE_XML), "multipart/form-data").status_code == 415


def test_oversized_body_is_413(client, applied):
    body = b"cdr=" + b"A" * MAX_CDR_BYTES
    assert post(client, body).status_code == 413
    assert applied == []


def test_store_down_is_503_so_freeswitch_retries(applied):
    def apply(end: LegEnd) -> None:
        raise StoreError("database error: OperationalError: gone away")

    client = make_client(apply)
    result = post(client, form_encoded(fixture(CALLEE_XML)))
    assert result.status_code == 503
    assert "Retry-After" in result.headers


# --------------------------------------------------------------------------------------------
# With the real listener and store: both legs' CDRs settle the call, once.

NOW = 1795733900.0


def test_cdrs_settle_the_call_once(store, make_call):
    account = store.accounts.create("acme", 10)
    call = dataclasses.replace(
        make_call(account.id, max_duration=3, callback_url="https://example.com/cb"),
        id=CALL_BRIDGED,
    )
    store.accept_call(account.id, call, now=NOW, **ACCEPT_DEFAULTS)
    listener = CallEventListener(store, clock=lambda: NOW + 100)
    client = make_client(listener.leg_ended)

    for _ in range(2):  # FreeSWITCH may post a CDR again; an event may have come first
        for name in ("caller-answered-bridged.cdr.xml", CALLEE_XML):
            assert post(client, form_encoded(fixture(name))).status_code == 200

    row = store.calls.get(CALL_BRIDGED)
    assert (row["state"], row["answered"], row["minutes"], row["billsec"]) == ("ended", True, 1, 4)
    assert (row["caller_hangup_cause"], row["callee_sip_status"]) == ("NORMAL_CLEARING", "200")
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (9, 0)
    assert len(store.ledger.entries(account.id)) == 2  # the grant and one debit
    assert store.callbacks.get_for_call(CALL_BRIDGED) is not None


# --------------------------------------------------------------------------------------------
# The simulator posts like mod_xml_cdr: its CDRs reach the endpoint and give both legs' ends.

SIM_A = "aaaaaaaa-3333-4000-8000-000000000001"
SIM_B = "bbbbbbbb-3333-4000-8000-000000000001"


@pytest.mark.parametrize("encode", ["true", "textxml"])
def test_the_simulators_cdrs_are_applied(encode):
    applied: list[LegEnd] = []
    app = falcon.App()
    resource = CdrResource(applied.append, USER, PASSWORD, INTERNAL)
    app.add_route("/internal/cdr", resource)
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    switch = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/internal/cdr"
        poster = CdrPoster(url, credentials=f"{USER}:{PASSWORD}", encode=encode, retries=0)
        poster.attach(switch)
        switch.api_command(
            f"originate {{origination_uuid={SIM_A},c2c_call_id={CALL_BRIDGED},c2c_leg=caller}}"
            "sofia/gateway/gw1/+15551230001 "
            f"&bridge({{origination_uuid={SIM_B},c2c_call_id={CALL_BRIDGED},c2c_leg=callee}}"
            "sofia/gateway/gw1/+15551230002)"
        )
        assert switch.wait_for(lambda: not switch.legs)
        poster.join(timeout=5)
    finally:
        switch.stop()
        server.stop()
    by_leg = {end.leg: end for end in applied}
    assert set(by_leg) == {"caller", "callee"}
    assert {end.call_id for end in applied} == {CALL_BRIDGED}
    assert by_leg["callee"].answered_at is not None and by_leg["callee"].billsec >= 0
