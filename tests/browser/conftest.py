"""The dashboard in a real headless Chromium (Debian's ``chromium`` package, driven by
Playwright), against a real server and a target whose answers the tests release."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.api_server import ApiServer
from tests.support.gated_target import GatedTarget

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for a module's tests. Not for the session: Playwright's synchronous API
    runs an event loop of its own, and while it lives the asyncio tests after it cannot run."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert errors == [], f"the page's scripts failed: {errors}"


@pytest.fixture
def gated() -> Iterator[GatedTarget]:
    with GatedTarget() as target:
        yield target


@pytest.fixture
def server(tmp_path: Path, gated: GatedTarget) -> Iterator[ApiServer]:
    with ApiServer(tmp_path / "ui.db") as api:
        yield api
        # A call still held by the target would keep the server's shutdown waiting.
        gated.release_all()
