"""CDRs POSTed like mod_xml_cdr: both legs, retries, the spool on failure."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from urllib.parse import parse_qs, unquote

import pytest
from gevent.pywsgi import WSGIServer

from c2c.fakeswitch.cdr import CdrPoster
from c2c.fakeswitch.server import FakeSwitch

A = "aaaaaaaa-2222-4000-8000-000000000001"
B = "bbbbbbbb-2222-4000-8000-000000000001"
CALL = (
    f"originate {{origination_uuid={A},c2c_call_id=7}}sofia/gateway/gw1/+15551230001 "
    f"&bridge({{origination_uuid={B},c2c_call_id=7}}sofia/gateway/gw1/+15551230002)"
)


class CdrSink:
    """A tiny HTTP endpoint that fails the first ``failures`` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/internal/cdr?key=k"

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read().decode()
        self.requests.append((environ["PATH_INFO"], parse_qs(environ["QUERY_STRING"]), body))
        if self.failures > 0:
            self.failures -= 1
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"busy"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def switch():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0).start()
    yield fake
    fake.stop()


def variables(body: str) -> dict[str, str]:
    xml = parse_qs(body)["cdr"][0]
    root = ElementTree.fromstring(xml)
    return {child.tag: unquote(child.text or "") for child in root.find("variables")}


def test_both_legs_are_posted(switch):
    sink = CdrSink()
    poster = CdrPoster(sink.url).attach(switch)
    assert switch.api_command(CALL) == f"+OK {A}\n"
    assert switch.wait_for(lambda: not switch.legs)
    poster.join(timeout=5)
    sink.server.stop()
    by_uuid = {query["uuid"][0]: body for _, query, body in sink.requests}
    assert set(by_uuid) == {f"a_{A}", B}
    assert all(query["key"] == ["k"] for _, query, _ in sink.requests)
    a = variables(by_uuid[f"a_{A}"])
    assert a["c2c_call_id"] == "7" and a["hangup_cause"] == "NORMAL_CLEARING"
    assert variables(by_uuid[B])["billsec"] == "5"


def test_retries_then_succeeds(switch, tmp_path):
    sink = CdrSink(failures=2)
    poster = CdrPoster(sink.url, spool_dir=tmp_path, retries=2, delay=0.01, log_b_leg=False).attach(
        switch
    )
    switch.api_command(CALL)
    assert switch.wait_for(lambda: not switch.legs)
    poster.join(timeout=5)
    sink.server.stop()
    assert len(sink.requests) == 3
    assert list(tmp_path.iterdir()) == []


def test_spools_when_every_attempt_fails(switch, tmp_path):
    poster = CdrPoster(
        "http://127.0.0.1:9/nowhere", spool_dir=tmp_path, retries=1, delay=0.01
    ).attach(switch)
    switch.api_command(CALL)
    assert switch.wait_for(lambda: not switch.legs)
    poster.join(timeout=10)
    spooled = sorted(path.name for path in tmp_path.iterdir())
    assert spooled == [f"a_{A}.cdr.xml", f"{B}.cdr.xml"]
    root = ElementTree.parse(tmp_path / f"a_{A}.cdr.xml").getroot()
    assert root.find("callflow/caller_profile/uuid").text == A


def test_bad_url_is_refused():
    with pytest.raises(ValueError):
        CdrPoster("ftp://example/")
