"""The widget in a real browser (issue 15): Debian's headless Chromium, driven by selenium through
Debian's chromedriver (no browser is downloaded), against `c2c demo` and its sample shop page.

A visitor types a number and clicks; the widget shows ringing you -> connecting -> connected ->
ended while the simulator plays the call, and the callback arrives. The same page served from an
origin the widget does not list is refused; the per-number limit and the challenge are enforced;
the Spanish strings follow the page's lang; nothing on the page moves. A screenshot of each state
is written under test-output/widget/ (the CI keeps the tree).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO / "test-output" / "widget"
# Slow enough for the widget's once-a-second poll to see every state: the visitor answers after
# 3 s, the shop's line 3 s later and hangs up 5 s after that. 0486 stays busy.
SCENARIO = {"rules": [
    {"suffix": "0486", "action": "busy"},
    {"role": "caller", "action": "answer", "answer_after": 3, "hangup_after": None},
    {"action": "answer", "answer_after": 3, "hangup_after": 5},
]}
STATES = ["ringing_you", "connecting", "connected", "ended"]

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):  # pragma: no cover
    # .ci/run installs both (apt-get install chromium chromium-driver): on CI this never skips.
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402 (only with a browser to drive)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class Demo:
    """`c2c demo` in its own process; its printed lines, in order."""

    def __init__(self, tmp_path: Path) -> None:
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps(SCENARIO))
        env = {**os.environ, "C2C_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
               "C2C_WIDGET_PER_NUMBER_PER_HOUR": "1"}
        self._stderr = open(tmp_path / "demo-stderr.txt", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "c2c.cli.main", "demo", "--port", "0", "--scenario",
             str(scenario)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=self._stderr, start_new_session=True)
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.api = json.loads(self.wait_for(r'^\{"api"'))["api"]
        self.shop = re.search(r"(http://\S+/demo/shop)", self.wait_for(r"/demo/shop")).group(1)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        regex = re.compile(pattern)
        for line in self.seen:
            if regex.search(line):
                return line
        while True:
            line = self._lines.get(timeout=timeout)  # queue.Empty: the lines seen tell why
            self.seen.append(line)
            if regex.search(line):
                return line

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._stderr.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = Demo(tmp_path_factory.mktemp("demo"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1100,900", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


class Widget:
    """The widget on the page the browser shows: its host element and shadow root."""

    def __init__(self, driver: Any, screenshots: Path) -> None:
        self.driver = driver
        self.screenshots = screenshots
        self.host = WebDriverWait(driver, 15).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-c2c-widget][data-state]"))

    @property
    def state(self) -> str | None:
        return self.host.get_attribute("data-state")

    def part(self, selector: str) -> Any:
        return self.host.shadow_root.find_element(By.CSS_SELECTOR, selector)

    def wait_state(self, *states: str, timeout: float = 20.0) -> str:
        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: self.state in states)
        return str(self.state)

    def snap(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.host.screenshot(str(path))
        assert path.stat().st_size > 1000
        return path

    def follow(self, until: str, prefix: str, timeout: float = 30.0) -> list[str]:
        """Every state the widget shows until ``until``, a screenshot of each as it comes."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != until:
            state = self.state
            if state and (not seen or seen[-1] != state):
                seen.append(state)
                self.snap(f"{prefix}-{len(seen):02d}-{state}")
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        return seen

    def call(self, country: str, number: str, *, keyboard: bool = False) -> None:
        Select(self.part("#c2c-country")).select_by_value(country)
        phone = self.part("#c2c-phone")
        phone.clear()
        phone.send_keys(number)
        if keyboard:
            phone.send_keys(Keys.ENTER)
        else:
            self.part("#c2c-call").click()

    def status_text(self) -> str:
        return str(self.part("#c2c-status").text)


def layout_shift(driver: Any) -> float:
    """The page's cumulative layout shift so far (Chromium's layout-shift entries)."""
    return float(driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        new PerformanceObserver(() => {}).observe({type: 'layout-shift', buffered: true});
        const entries = performance.getEntriesByType('layout-shift');
        done(entries.filter(e => !e.hadRecentInput).reduce((sum, e) => sum + e.value, 0));
    """))


def test_a_visitor_calls_from_the_demo_shop(demo: Demo, browser: Any, screenshots: Path) -> None:
    browser.get(demo.shop)
    widget = Widget(browser, screenshots)
    assert widget.wait_state("ready") == "ready"
    widget.snap("01-ready")
    below = browser.find_element(By.XPATH, "//*[@data-c2c-widget]/following::p[1]")
    top_before = below.rect["y"]

    # Accessible: every control labelled, the status announced politely.
    root = widget.host.shadow_root
    for control in ("#c2c-country", "#c2c-phone"):
        element_id = control.lstrip("#")
        assert root.find_elements(By.CSS_SELECTOR, f"label[for='{element_id}']"), control
    assert widget.part("#c2c-call").text.strip()
    status = widget.part("#c2c-status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"

    visitor = "2125550142"
    widget.call("1", visitor)
    seen = widget.follow("ended", "02-call")
    shown = [s for s in seen if s in STATES]
    assert shown == STATES, seen  # every state, in order, none skipped
    assert set(seen) - set(STATES) <= {"working"}, seen
    assert "Thank you" in widget.status_text()

    # The call as c2c saw it: the visitor rung first, then the shop's line; the callback came.
    settled = demo.wait_for(r"call \S+ settled: answered=1 minutes=1")
    call_id = settled.split()[1]
    callback = demo.wait_for(rf"callback received for call {call_id}")
    assert "answered=1" in callback

    # Nothing on the page moved while the widget drew and changed.
    assert below.rect["y"] == top_before
    assert layout_shift(browser) == 0

    # The same number again within the hour: the per-number limit (1 here); by keyboard.
    widget.call("1", visitor, keyboard=True)
    assert widget.wait_state("refused", "error") == "refused"
    assert widget.host.get_attribute("data-error") == "try_later"
    widget.snap("03-refused-try-later")
    assert "try again" in widget.status_text().lower()

    # A number the widget checks itself (too short): no request at all.
    widget.call("44", "12")
    assert widget.wait_state("refused", "error") == "refused"
    assert widget.host.get_attribute("data-error") == "invalid_number"
    widget.snap("04-refused-invalid-number")


def test_the_challenge_is_enforced_from_the_page(demo: Demo, browser: Any) -> None:
    """A script on the listed page (or a bot) that skips the proof of work, or replays one, is
    refused: 400 challenge_failed, and nothing is placed."""
    browser.get(demo.shop)
    widget = Widget(browser, SCREENSHOTS)
    widget_id = widget.host.get_attribute("data-c2c-widget")
    answers = browser.execute_async_script("""
        const [api, id, done] = arguments;
        const post = solution => fetch(`${api}/api/widget/${id}/calls`, {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({country_code: '1', phone_number: '2125550177', solution})
        }).then(r => r.json().then(body => [r.status, body.error || 'placed']));
        (async () => {
            const challenge = await (await fetch(`${api}/api/widget/${id}/challenge`)).json();
            const forged = btoa(JSON.stringify({...challenge, number: 0, signature: 'ff'}));
            done([await post(''), await post('bm90IGpzb24='), await post(forged)]);
        })().catch(e => done(String(e)));
    """, demo.api, widget_id)
    assert answers == [[400, "challenge_failed"]] * 3, answers


class _Page(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_a_page_from_an_unlisted_origin_is_refused(demo: Demo, browser: Any, screenshots: Path,
                                                   tmp_path: Path) -> None:
    """The demo's page copied to another origin (another port), in Spanish: the browser gets no
    CORS answer, the widget says (in Spanish) that calling is unavailable, nothing is placed."""
    browser.get(demo.shop)
    widget_id = Widget(browser, screenshots).host.get_attribute("data-c2c-widget")
    page = (REPO / "c2c" / "api" / "static" / "demo-shop.html").read_text()
    page = (page.replace("__WIDGET_ID__", widget_id).replace("__API_BASE__", demo.api)
            .replace('<html lang="en">', '<html lang="es">'))
    (tmp_path / "index.html").write_text(page)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Page, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/index.html")
        widget = Widget(browser, screenshots)
        assert widget.wait_state("error", "refused") == "error"
        assert widget.host.get_attribute("data-error") in ("origin_not_allowed", "unavailable")
        assert widget.part("#c2c-call").get_attribute("disabled") is not None
        text = widget.status_text()
        assert text and "unavailable" not in text.lower()  # said in Spanish
        widget.snap("05-unlisted-origin-es")
    finally:
        server.shutdown()
        server.server_close()
