"""The pages in a real browser: Debian's Chromium, driven by Playwright, headless.

The server is what a newcomer gets from ``make run``: ``liftlog serve --demo`` on an empty data
directory, whose demo experiment is fed by a simulated run through the Event API. The test signs
in with the password the server printed, checks that every figure of the results page equals the
results API's (for each method, and broken down by a segment), downloads the CSV, finds why a
conversion did not count in the event debugger, checks text contrast (WCAG AA) and that the
controls are reachable with the keyboard, and looks at the page at phone width.

Screenshots of each page go under ``docs/screenshots/`` when ``LIFTLOG_SCREENSHOTS=1`` (to refresh
the README's pictures), into the test's temporary directory otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from liftlog import demo
from tests.server import Server, free_port
from tests.web.reading import Shown, assert_shows

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
#: Without these, Chromium keeps trying to reach the network, which a test machine doesn't have.
QUIET = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

#: The result tables as the browser renders them, in the shape of `tests.web.reading.Shown`.
READ_TABLES = """() => {
  const out = {};
  for (const t of document.querySelectorAll('table.results')) {
    const segment = out[t.dataset.segment ?? ''] ??= {};
    const rows = segment[t.dataset.metric] = {};
    for (const tr of t.querySelectorAll('tr[data-variation-id]')) {
      rows[tr.dataset.variationId] = Object.fromEntries(Array.from(
        tr.querySelectorAll('td[data-field]'), td => [td.dataset.field, td.innerText]));
    }
  }
  return out;
}"""

#: Text whose contrast with its background is under WCAG AA's 4.5:1 (3:1 for large text).
LOW_CONTRAST = """() => {
  const rgb = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p[3] ?? 1}; };
  const lum = c => { const f = v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el), box = el.getBoundingClientRect();
    if (st.visibility === 'hidden' || box.width === 0 || box.height === 0) continue;
    const svg = el instanceof SVGElement, fg = rgb(svg ? st.fill : st.color);
    if (!fg) continue;
    const L1 = lum(fg), L2 = lum(background(svg ? el.closest('svg') : el));
    const ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) low.push(`${el.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""

FOCUSED = """() => { const e = document.activeElement, st = getComputedStyle(e);
  return {tag: e.tagName.toLowerCase(), id: e.id, text: e.innerText?.trim() ?? '',
          outline: st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) > 0}; }"""


def _ensure_chromium() -> None:
    """Install Debian's chromium when it is missing and we may (root, apt-get)."""
    if CHROMIUM.exists() or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip


@dataclass(frozen=True)
class Demo:
    server: Server
    email: str
    password: str
    experiment_id: int
    explain_visitor: str
    token: str

    def api(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.server.url}{path}", params=params, timeout=60,
                         headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``liftlog serve --demo`` on an empty data directory, its traffic loaded."""
    data = tmp_path_factory.mktemp("browser") / "data"
    server = Server(data, free_port()).start("--demo")
    try:
        signin = re.search(r"Sign in: +\S+ +as (\S+) +password (\S+)", server.log())
        assert signin, server.log()
        marker = json.loads((data / demo.DEMO_FILE).read_text())
        server.wait_rows("decisions", demo.VISITORS)
        made = subprocess.run(
            [sys.executable, "-m", "liftlog.cli", "token", "create", "--name", "browser test",
             "--scope", "read", "--json", "--data", str(data)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        yield Demo(server, signin.group(1), signin.group(2), marker["experiment_id"],
                   marker["explain_visitor"], json.loads(made.stdout)["secret"])  # fmt: skip
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("LIFTLOG_SCREENSHOTS") == "1":
        return DOCS_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _ensure_chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=QUIET)
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Page, name: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def _shown(page: Page) -> Shown:
    raw: dict[str, dict[str, dict[str, dict[str, str]]]] = page.evaluate(READ_TABLES)
    return {seg: {int(m): rows for m, rows in tables.items()} for seg, tables in raw.items()}


def _show(page: Page, method: str, segment: str) -> None:
    """Pick a method and a segment with the page's own controls, as a person would."""
    page.select_option("#method", method)
    page.select_option("#segment", segment)
    page.click("button:has-text('Show')")
    page.wait_for_url(f"**method={method}&segment={segment}")


def test_a_newcomer_signs_in_reads_the_demo_and_finds_why_a_conversion_did_not_count(
    started: Demo, browser: Browser, screenshots: Path, tmp_path: Path
) -> None:
    results_url = f"{started.server.url}/ui/experiments/{started.experiment_id}"
    page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page.goto(results_url)
    assert page.url.startswith(f"{started.server.url}/ui/signin")
    _shot(page, "signin", screenshots)
    page.fill("#email", started.email)
    page.fill("#password", started.password)
    page.keyboard.press("Enter")
    page.wait_for_url(results_url)
    assert page.locator("svg.chart").count() == 2
    _shot(page, "results", screenshots)

    # The summary's visitors, then every figure of every table, for each method.
    reach = started.api(f"/v2/experiments/{started.experiment_id}/results").json()["reach"]
    summary = page.locator(".summary dd").nth(2).inner_text()
    assert summary.startswith(f"{reach['total_count']:,}:")
    for v in reach["variations"].values():
        assert f"{v['name']} {v['count']:,}" in summary
    for method in ("sequential", "fixed", "bayesian"):
        _show(page, method, "")
        doc = started.api(f"/v2/experiments/{started.experiment_id}/results", method=method)
        shown = _shown(page)
        assert list(shown) == [""]
        assert_shows(shown[""], doc.json())

    # Broken down by country: the whole experiment's tables and one set per country.
    _show(page, "sequential", "country")
    doc = started.api(f"/v2/experiments/{started.experiment_id}/results", segment="country")
    shown = _shown(page)
    assert set(shown) == {"", *(part["value"] for part in doc.json()["segments"])}
    assert len(shown) == 1 + len(demo.COUNTRIES)
    assert_shows(shown[""], doc.json())
    for part in doc.json()["segments"]:
        assert_shows(shown[part["value"]], part)

    # The CSV download is the API's CSV for the same method and segment.
    with page.expect_download() as download:
        page.click("text=Download CSV")
    saved = tmp_path / "results.csv"
    download.value.save_as(saved)
    served = started.api(f"/v2/experiments/{started.experiment_id}/results", format="csv",
                         method="sequential", segment="country")  # fmt: skip
    text = saved.read_text()
    assert list(csv.reader(io.StringIO(text))) == list(csv.reader(io.StringIO(served.text)))
    assert len(list(csv.DictReader(io.StringIO(text)))) == 9 * (1 + len(demo.COUNTRIES))

    # Why did a conversion of this visitor not count? The debugger, reached from the results.
    page.click("text=Event debugger >> nth=-1")
    page.wait_for_url("**/ui/debugger?experiment=*")
    page.fill("#q", started.explain_visitor)
    page.click("button:has-text('Search')")
    page.wait_for_url(f"**q={started.explain_visitor}**")
    excluded = page.locator("tr.not-counted td[data-field='reason']")
    assert excluded.count() == 1
    assert "before the visitor's first decision" in excluded.inner_text()
    assert page.locator("tr.counted").count() >= 1  # the decision, and any later conversion
    _shot(page, "debugger", screenshots)


def test_the_pages_meet_contrast_and_keyboard_basics(started: Demo, browser: Browser,
                                                     screenshots: Path) -> None:  # fmt: skip
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{started.server.url}/ui/signin")
    assert page.evaluate(LOW_CONTRAST) == []
    page.fill("#email", started.email)
    page.fill("#password", started.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/projects")
    for path in ("/ui/projects", f"/ui/experiments/{started.experiment_id}?segment=device",
                 f"/ui/debugger?q={started.explain_visitor}"):  # fmt: skip
        page.goto(f"{started.server.url}{path}")
        assert page.evaluate(LOW_CONTRAST) == [], path

    # From the top of the results page, Tab reaches every control, each with a visible focus.
    page.goto(f"{started.server.url}/ui/experiments/{started.experiment_id}")
    reached = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["tag"] == "body":  # past the last control: the page has been tabbed through
            break
        assert focused["outline"], focused
        reached.append(focused["id"] or focused["text"])
    for control in ("method", "segment", "Show", "Download CSV", "Event debugger"):
        assert control in reached, reached

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{started.server.url}/ui/experiments/{started.experiment_id}")
    assert phone.locator("table.results").count() == 3
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # wide tables scroll inside their own region, not the page
    _shot(phone, "results-phone", screenshots)
