"""The deployed app's UI in a real browser: Playwright driving Debian's chromium.

Playwright's own browser download cannot reach anything here, so it launches the system binary
that scripts/bootstrap.sh installs. Every request the page makes goes through a route: requests
to the app's origin go on, any other is aborted and recorded, so a test proves the UI works with
no outside host (as on a course VM without internet) and that it asks none. A failing visit leaves
a screenshot in build/artifacts/ and names it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "artifacts"


@dataclass
class Visit:
    page: Page
    origin: str
    outside: list[str] = field(default_factory=list)  # requests to other hosts (aborted)
    seen: list[str] = field(default_factory=list)  # every request the page made


@contextmanager
def visit(url: str, name: str) -> Iterator[Visit]:
    """A page opened at `url`; a failure inside saves `build/artifacts/<name>.png`."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    origin = urlsplit(url).netloc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            context = browser.new_context()
            # A busy 2-core machine runs VMs, the app and the browser at once.
            context.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page = context.new_page()
            current = Visit(page, origin)

            def only_the_app(route: Route) -> None:
                target = route.request.url
                current.seen.append(target)
                if urlsplit(target).netloc == origin:
                    route.continue_()
                else:
                    current.outside.append(target)
                    route.abort()

            context.route("**/*", only_the_app)  # every page of the visit, /docs included
            page.goto(url)
            try:
                yield current
            except BaseException:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shot = ARTIFACTS / f"{name}.png"
                page.screenshot(path=shot, full_page=True)
                print(f"screenshot of the failing page: {shot}")
                raise
        finally:
            browser.close()
