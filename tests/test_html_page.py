"""The HTML leaderboard page, opened in headless Chromium.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test needs no
websocket client and opens no port. The header click is a real mouse event at the
header's position on screen; the sorted order is then read back from the DOM.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from table_records import write_records

from snnbench_suite.cli import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--remote-debugging-pipe")
TIMEOUT_S = 60.0


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, user_data_dir: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipe_fds() -> None:
            # In the child: Chromium reads commands on fd 3 and writes replies on fd 4.
            # The pipe ends may themselves be 3 or 4, so move them out of the way first.
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            os.close(high_r)
            os.close(high_w)

        # close_fds=False: every other descriptor Python opened is close-on-exec already,
        # and dup2 leaves 3 and 4 inheritable.
        self.process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}",
             "about:blank"],
            preexec_fn=pipe_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the debugging pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        os.close(self._to_browser)
        os.close(self._from_browser)


class Page:
    def __init__(self, tools: DevTools, session: str) -> None:
        self.tools, self.session = tools, session

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.tools.send(method, params, self.session)

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the element."""
        box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                      ".getBoundingClientRect(); return [r.x + r.width / 2, "
                      "r.y + r.height / 2]; })()")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)


@pytest.fixture
def page_file(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    write_records(results)
    out = tmp_path / "page.html"
    assert main(["table", "--results", str(results), "--format", "html", "--output",
                 str(out)]) == 0
    return out


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); "
                    ".ci/run installs it with apt-get")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    tools = DevTools(profile)
    try:
        targets = tools.send("Target.getTargets")["targetInfos"]
        target = next(t["targetId"] for t in targets if t["type"] == "page")
        session = tools.send("Target.attachToTarget", {"targetId": target,
                                                        "flatten": True})["sessionId"]
        page = Page(tools, session)
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000,
                  deviceScaleFactor=1, mobile=False)
        yield page
    finally:
        tools.close()
        shutil.rmtree(profile, ignore_errors=True)


COLUMN_VALUES = """(() => {
  const table = document.getElementById('leaderboard');
  const headers = [...table.tHead.rows[0].cells].map(c => c.textContent);
  const index = headers.indexOf(%s);
  return [...table.tBodies[0].rows].filter(r => !r.hidden)
    .map(r => r.cells[index].textContent);
})()"""


def _leading(values: list[str]) -> list[float]:
    return [float(v.split()[0]) for v in values if v and v[0].isdigit()]


def test_page_sorts_filters_and_renders_in_chromium(page_file: Path, browser: Page,
                                                    tmp_path: Path) -> None:
    browser.call("Page.navigate", url=page_file.resolve().as_uri())
    browser.tools.wait_event("Page.loadEventFired")

    # Rows: 4 reproduced (naive on vgg11 and resnet20, calib, the markup name) and the
    # published rows of every paper, marked as reported.
    kinds = browser.js("[...document.querySelectorAll('#leaderboard tbody tr')]"
                       ".map(r => r.dataset.kind)")
    assert kinds.count("reproduced") == 4
    assert kinds.count("reported") >= 10
    assert browser.js("document.querySelectorAll('#leaderboard tr.reported .badge')"
                      ".length") == kinds.count("reported")
    # The record whose method name is markup shows as text; the page has one script.
    assert browser.js("document.scripts.length") == 1
    methods = browser.js(COLUMN_VALUES % "'method'")
    assert "<script>alert(1)</script>" in methods

    # A click on the T=4 header sorts ascending by the number each cell starts with;
    # cells without a number (failed, —) go last.
    before = browser.js(COLUMN_VALUES % "'T=4'")
    browser.click("#leaderboard th:nth-child(6)")
    assert browser.js("document.querySelector('#leaderboard th:nth-child(6)').textContent"
                      ) == "T=4"
    ascending = browser.js(COLUMN_VALUES % "'T=4'")
    numbers = _leading(ascending)
    assert numbers == sorted(numbers) and len(numbers) >= 3
    assert ascending[:len(numbers)] == [v for v in ascending if v and v[0].isdigit()]
    assert sorted(ascending) == sorted(before)
    assert browser.js("document.querySelector('#leaderboard th:nth-child(6)')"
                      ".getAttribute('aria-sort')") == "ascending"
    browser.click("#leaderboard th:nth-child(6)")
    descending = _leading(browser.js(COLUMN_VALUES % "'T=4'"))
    assert descending == sorted(numbers, reverse=True)

    # Filters: only digits rows, then only resnet20 rows.
    browser.js("(() => { const s = document.getElementById('filter-dataset');"
               " s.value = 'digits'; s.dispatchEvent(new Event('change')); })()")
    datasets = browser.js(COLUMN_VALUES % "'dataset'")
    assert set(datasets) == {"digits"} and len(datasets) == 4
    browser.js("(() => { const s = document.getElementById('filter-architecture');"
               " s.value = 'resnet20'; s.dispatchEvent(new Event('change')); })()")
    assert browser.js(COLUMN_VALUES % "'architecture'") == ["resnet20"]
    assert browser.js("[...document.querySelectorAll('figure')].filter(f => !f.hidden)"
                      ".length") >= 1

    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    path = tmp_path / "leaderboard.png"
    path.write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", shot[16:24])
    assert (width, height) == (1400, 1000)
    assert path.stat().st_size > 10_000


def test_page_escapes_every_string_and_needs_no_network(tmp_path: Path) -> None:
    """Markup in a record (method, architecture, error) and in a reference file (citation,
    where) is shown as text; the page loads nothing from anywhere."""
    from table_records import record

    results = write_records(tmp_path / "results", [
        record("naive", "vgg11", 0, {1: 50.0, 4: 80.0}),
        record("<b>bold</b>", '"><img src=x onerror=alert(2)>', 0, {1: 10.0}),
        record("sdt", "vgg11", 0, status="failed", error="<script>alert(3)</script>"),
    ])
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "evil2020.yaml").write_text(
        "paper: evil2020\nshort: \"<i>Evil</i> 2020\"\n"
        "citation: \"</style><script>alert(4)</script>\"\n"
        "numbers:\n  - {method: naive, dataset: digits, architecture: vgg11, T: 4, top1: 90,\n"
        "     where: \"<a href='http://x'>Table 1</a>\", family: conversion}\n")
    out = tmp_path / "page.html"
    assert main(["table", "--results", str(results), "--reference", str(reference),
                 "--format", "html", "--output", str(out)]) == 0
    page = out.read_text()
    for raw in ("<b>bold</b>", "<img src=x", "<script>alert(3)", "<i>Evil</i>",
                "</style><script>", "<a href="):
        assert raw not in page
    for escaped in ("&lt;b&gt;bold&lt;/b&gt;", "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;",
                    "&lt;script&gt;alert(3)&lt;/script&gt;", "&lt;i&gt;Evil&lt;/i&gt; 2020",
                    "&lt;/style&gt;&lt;script&gt;alert(4)&lt;/script&gt;"):
        assert escaped in page
    assert page.count("<script>") == 1 and page.count("<style>") == 1
    # Self-contained: every src is a data URI and nothing links out.
    assert 'src="data:image/svg+xml;base64,' in page
    assert re.findall(r'\bsrc="(?!data:)', page) == []
    assert re.findall(r"<(?:a|link|iframe|object|embed)\b|@import|\burl\(", page) == []
