"""The pages in a real browser: Debian's Chromium, driven by Playwright, headless.

Signs in, reads the results page, switches the method, searches a visitor in the debugger, and
takes screenshots of each page: under ``docs/screenshots/`` when ``LIFTLOG_SCREENSHOTS=1`` (to
refresh the README's pictures), in the test's temporary directory otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api.conftest import Api
from tests.web.conftest import EMAIL, PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
#: Without these, Chromium keeps trying to reach the network, which a test machine doesn't have.
QUIET = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


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


def test_browser_signs_in_reads_results_and_debugs_a_visitor(
    web: Api, world: dict[str, Any], browser: Browser, screenshots: Path
) -> None:
    experiment_id = world["experiment"]["id"]
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{web.url}/ui/experiments/{experiment_id}")
    assert page.url.startswith(f"{web.url}/ui/signin")
    _shot(page, "signin", screenshots)
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/experiments/{experiment_id}")
    assert page.locator("table.results").count() == 2
    _shot(page, "results", screenshots)

    page.select_option("#method", "bayesian")
    page.click("button:has-text('Show')")
    page.wait_for_url("**method=bayesian**")
    assert page.locator("th:has-text('Chance to beat baseline')").count() == 2

    page.click("text=Event debugger >> nth=-1")
    page.wait_for_url("**/ui/debugger?experiment=*")
    page.fill("#q", "r0")
    page.click("button:has-text('Search')")
    page.wait_for_url("**q=r0**")
    reason = page.locator("tr[data-uuid='too-early'] td[data-field='reason']").inner_text()
    assert "before the visitor's first decision" in reason
    _shot(page, "debugger", screenshots)

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{web.url}/ui/experiments/{experiment_id}")
    assert phone.locator("table.results").count() == 2
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # wide tables scroll inside their own region, not the page
    _shot(phone, "results-phone", screenshots)
