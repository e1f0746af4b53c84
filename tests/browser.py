"""A real browser for the tests that look at a page as a person would (the SQL project's documentation site, the
Airflow UI): the system's headless Chromium (Debian's ``chromium``, which ``make setup`` installs as root, or the
one ``CHROMIUM`` names), driven by Playwright, which downloads no browser of its own.

Loaded by ``tests/conftest.py`` as a plugin: any test may ask for ``browser`` (one Chromium for the whole run) or
``page`` (a fresh tab whose console errors and uncaught exceptions are collected in ``page.errors``). A test using
either is marked ``browser``; ``make test-fast`` leaves those out.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

#: where to look for Chromium, in order
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
VIEWPORT = {"width": 1400, "height": 900}


def chromium_path() -> str | None:
    """The browser to drive: ``CHROMIUM``, else the first of :data:`CANDIDATES` on the PATH."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the run (starting one takes about a second)."""
    executable = chromium_path()
    if executable is None or not Path(executable).exists():
        pytest.fail(
            "No Chromium to drive: `make setup` installs Debian's chromium when run as root "
            "(or `apt-get install chromium`); set CHROMIUM to use another one."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to start its sandbox as root, which is how the tests run in CI.
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A new tab in its own context; ``page.errors`` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    yield tab
    context.close()
