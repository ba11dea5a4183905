"""The API documentation page in headless Chromium against the real server: Swagger UI renders every documented
operation from /scouter/docs/openapi.json, fetching nothing from another origin and logging no error (a blocked
inline script or a missing file would). A screenshot lands in the test's tmp_path.

Chromium is Debian's (`services.ensure_chromium`), driven by Playwright with `executable_path`, as in
test_dashboard.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests import services
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@contextlib.contextmanager
def _standard_asyncio() -> Iterator[None]:
    """asyncio's own loop policy while Playwright runs (trio-asyncio's policy cannot run its greenlets)."""
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


def test_swagger_ui_renders_every_operation_from_this_server_alone(live_server: LiveServer, tmp_path: Path) -> None:
    """/scouter/docs shows one block per documented operation; every request stays on the server; no console
    error."""
    document = httpx.get(f"{live_server.url}/scouter/docs/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    chromium = services.ensure_chromium()
    requested: list[str] = []
    problems: list[str] = []
    with _standard_asyncio(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{live_server.url}/scouter/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            rendered = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
            page.screenshot(path=str(tmp_path / "scouter-docs.png"), full_page=True)
        finally:
            browser.close()
    assert operations == rendered
    assert title.startswith("Scouter")
    assert [] == problems
    assert [] == [url for url in requested if not url.startswith(f"{live_server.url}/scouter/docs")]
