"""The web dashboard in headless Chromium against the real server: log in, list profiles, drift charts of each
drift type over a chosen range, acknowledge an alert; screenshots of every step.

Chromium is Debian's (`services.ensure_chromium` installs it when missing), driven by Playwright with
`executable_path`; Playwright's own browser downloads are never used. Data goes in through the API as a client
would send it; the alert is stored straight in SQL (as a poller would), since a real check runs on a cron schedule.
Screenshots land in the test's tmp_path (pytest keeps the last runs' directories) under `screenshots/`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests import services
from tests.drift_profiles import custom_profile, psi_profile, spc_profile
from tests.e2e.conftest import AdminApi, LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SPACE, NAME, VERSION = "web", "model", "1.0.0"
USER, PASSWORD = "viewer", "Dashboard-pa55word"
#: Records every 4 minutes over the last 50: with "1 hour" and 30 points (2-minute buckets) one point each.
STEPS = 12
STEP = timedelta(minutes=4)
OUT_OF_BOUNDS = 7.5  # above feature_0's UCL (center 0, sigma 1): the one alarm point
BINS = [0.25, 0.25, 0.25, 0.25]


@pytest.fixture(scope="session")
def chromium() -> Path:
    return services.ensure_chromium()


@contextlib.contextmanager
def _standard_asyncio() -> Iterator[None]:
    """asyncio's own loop policy while Playwright runs. Once trio_asyncio is imported (the actor tests import it),
    `asyncio.new_event_loop()` makes trio-asyncio loops, which Playwright's greenlet-driven sync API cannot run.
    trio_asyncio keeps a policy set outside trio per thread, and `None` gives it back its own."""
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


@pytest.fixture
def browser(chromium: Path) -> Iterator[Browser]:
    with _standard_asyncio(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {kind: {"created_at": _wire(at), "space": SPACE, "name": NAME, "version": VERSION, **fields}}


def _seed(seeder: AdminApi, now: datetime) -> list[datetime]:
    """Three profiles of space `web` with data, one of space `hidden` the viewer may not read; the record times."""
    seeder.register(spc_profile({"feature_0": (0.0, 1.0), "feature_1": (10.0, 2.0)}, space=SPACE, name=NAME))
    seeder.register(psi_profile({"feature_0": BINS}, space=SPACE, name=NAME))
    seeder.register(custom_profile({"mae": 1.0}, {"mae": ("Above", 0.5)}, space=SPACE, name=NAME))
    seeder.register(spc_profile({"feature_0": (0.0, 1.0)}, space="hidden", name="secret"))
    # 30 s into a 2-minute bucket, so the custom metric's three records of one time share its bucket
    anchor = datetime.fromtimestamp(now.timestamp() // 120 * 120, UTC) + timedelta(seconds=30)
    times = [anchor - STEP * k for k in range(1, STEPS + 1)]
    spc, psi, custom = [], [], []
    for k, at in enumerate(times):
        value = OUT_OF_BOUNDS if k == 3 else 0.4 * ((-1) ** k)
        spc.append(_record("Spc", at, feature="feature_0", value=value))
        spc.append(_record("Spc", at, feature="feature_1", value=10.0 + 0.3 * k))
        counts = [40 - k, 30, 25, 20 + k]  # 115 per bucket (> 100, else the bucket is dropped), drifting
        psi += [_record("Psi", at, feature="feature_0", bin_id=i + 1, bin_count=c) for i, c in enumerate(counts)]
        custom += [
            _record("Custom", at + timedelta(seconds=s), metric="mae", value=1.0 + 0.05 * k + 0.1 * s / 10)
            for s in (0, 10, 20)
        ]
    for batch in (spc, psi, custom):
        seeder.records(batch)
    return times


async def _insert_alert(dsn: str) -> int:
    """One SPC alert on feature_0, as a poller stores it (not for dispatch: nothing is configured to receive it)."""
    connection = await asyncpg.connect(dsn)
    try:
        alert = {"zone": "Zone 4", "kind": "Out of bounds", "entity_name": "feature_0"}
        alert_id: int = await connection.fetchval(
            "INSERT INTO scouter.drift_alert (space, name, version, entity_name, alert, drift_type, dispatch_state)"
            " VALUES ($1, $2, $3, 'feature_0', $4::jsonb, 'Spc', 'skipped') RETURNING id",
            SPACE,
            NAME,
            VERSION,
            json.dumps(alert),
        )
        return alert_id
    finally:
        await connection.close()


async def _profile_uids(dsn: str) -> list[str]:
    """The uids of the space's profiles, in the table's order (by drift type)."""
    connection = await asyncpg.connect(dsn)
    try:
        sql = "SELECT uid FROM scouter.drift_profile WHERE space = $1 ORDER BY drift_type"
        rows = await connection.fetch(sql, SPACE)
        return [row["uid"] for row in rows]
    finally:
        await connection.close()


def _watch(page: Page) -> list[str]:
    """Every console error, uncaught exception and failed request of the page (a CSP violation is one)."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} at {message.location.get('url', '?')}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    return problems


def _open_profile(page: Page, drift_type: str) -> None:
    page.get_by_role("link", name="All profiles").click()
    row = page.locator("#profiles-table tbody tr").filter(has_text=drift_type)
    row.get_by_role("link", name=NAME).click()
    expect(page.locator("#profile-title")).to_contain_text(drift_type)


def _show_last_hour(page: Page) -> None:
    page.locator("#range-form select[name=time_interval]").select_option("OneHour")
    page.locator("#range-form input[name=max_data_points]").fill("30")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#drift-status")).to_contain_text("at most 30 points")


def _card(page: Page, title: str) -> Any:
    return page.locator("#charts article.card").filter(has=page.locator("h3", has_text=re.compile(f"^{title}$")))


@pytest.fixture
def seeder(live_server: LiveServer) -> Iterator[AdminApi]:
    """The admin's API on the live server; its HTTP client is closed afterwards (else an unclosed socket is
    reported)."""
    seeder = AdminApi(live_server.url)
    try:  # not `with seeder.http`: httpx refuses to enter a client that has already sent its login request
        yield seeder
    finally:
        seeder.http.close()


def test_dashboard_logs_in_charts_drift_and_acknowledges_an_alert(
    live_server: LiveServer, seeder: AdminApi, fresh_database_dsn: str, browser: Browser, tmp_path: Path
) -> None:
    """A read/write user of one space logs in, sees that space's profiles only, sees SPC, PSI and custom charts with
    one point per record time, and acknowledges an alert, which the API then reports inactive."""
    user = {"username": USER, "password": PASSWORD, "email": "viewer@example.com", "permissions": [
        f"read:{SPACE}", f"write:{SPACE}"]}  # fmt: skip
    seeder.call("POST", "/scouter/user", json=user)
    times = _seed(seeder, datetime.now(UTC))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs a loop in this thread
        alert_id = pool.submit(asyncio.run, _insert_alert(fresh_database_dsn)).result(timeout=30)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    context = browser.new_context(viewport={"width": 1360, "height": 1000}, timezone_id="UTC")
    page = context.new_page()
    problems = _watch(page)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))

    page.goto(f"{live_server.url}/")
    expect(page.locator("#login-view")).to_be_visible()
    page.screenshot(path=shots / "1-login.png")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    rows = page.locator("#profiles-table tbody tr")
    expect(rows).to_have_count(3)  # space `hidden` is not readable by the viewer
    cells_of = [row.locator("td").all_inner_texts() for row in rows.all()]
    assert [["web", NAME, VERSION, kind, "active"] for kind in ("Custom", "Psi", "Spc")] == [
        cells[:5] for cells in cells_of
    ]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        uids = pool.submit(asyncio.run, _profile_uids(fresh_database_dsn)).result(timeout=30)
    assert uids == [cells[-1] for cells in cells_of]  # the entity uid scouter-ml 0.25 names the profile by
    expect(page.locator("#who")).to_have_text(USER)
    page.screenshot(path=shots / "2-profiles.png", full_page=True)

    # SPC: one point per record time and feature, the out-of-bounds one marked, control limits drawn.
    rows.filter(has_text="Spc").get_by_role("link", name=NAME).click()
    expect(page.locator("#profile-title")).to_contain_text(f"{SPACE} / {NAME} / {VERSION}")
    _show_last_hour(page)
    for feature in ("feature_0", "feature_1"):
        expect(_card(page, feature).locator("svg.chart circle.point")).to_have_count(STEPS)
    expect(_card(page, "feature_0").locator("circle.point.alarm")).to_have_count(1)
    expect(_card(page, "feature_1").locator("circle.point.alarm")).to_have_count(0)
    expect(_card(page, "feature_0").locator("g.rule.limit")).to_have_count(2)

    # The alert: listed while active, acknowledged with its button, gone from the active list.
    alert_row = page.locator(f'#alerts-table tr[data-alert-id="{alert_id}"]')
    expect(alert_row).to_contain_text("Out of bounds")
    page.screenshot(path=shots / "3-spc.png", full_page=True)
    alert_row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alerts-status")).to_have_text("No active alerts.")
    page.get_by_label("Active only").uncheck()
    expect(alert_row).to_contain_text("acknowledged")
    page.screenshot(path=shots / "4-alert-acknowledged.png", full_page=True)
    query = {"space": SPACE, "name": NAME, "version": VERSION, "active": "false"}
    alerts = seeder.call("GET", "/scouter/alerts", params=query)["alerts"]
    assert [(alert_id, False)] == [(a["id"], a["active"]) for a in alerts]

    # A custom range (the page's clock is UTC) holding the 6 newest record times only.
    page.get_by_label("or from", exact=True).fill((times[5] - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("to", exact=True).fill((datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    expect(_card(page, "feature_1").locator("circle.point")).to_have_count(6)
    expect(_card(page, "feature_0").locator("circle.point.alarm")).to_have_count(1)  # times[3] is in the range
    _show_last_hour(page)  # choosing "last ..." drops the custom range
    expect(_card(page, "feature_1").locator("circle.point")).to_have_count(STEPS)

    # PSI: PSI per bucket plus observed against profile bin proportions.
    _open_profile(page, "Psi")
    _show_last_hour(page)
    psi_card = _card(page, "feature_0")
    expect(psi_card.locator("circle.point")).to_have_count(STEPS)
    expect(psi_card.locator("svg.chart").nth(1).locator("rect.bar.s0")).to_have_count(len(BINS))
    expect(psi_card).to_contain_text("overall PSI")
    page.screenshot(path=shots / "5-psi.png", full_page=True)

    # Custom: average per bucket inside its ± one standard deviation band, training value and threshold drawn.
    _open_profile(page, "Custom")
    _show_last_hour(page)
    mae = _card(page, "mae")
    expect(mae.locator("circle.point")).to_have_count(STEPS)
    expect(mae.locator("polygon.band")).to_have_count(1)
    expect(mae.locator("circle.point.alarm")).to_have_count(3)  # averages 1.55, 1.6, 1.65 exceed 1.0 + 0.5
    assert ["training", "upper"] == mae.locator("g.rule text").all_text_contents()
    page.screenshot(path=shots / "6-custom.png", full_page=True)

    # The token lives in the page's memory only: a reload asks to log in again, then returns to the same profile
    # (with the default range, 24 hours in at most 48 points).
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#drift-status")).to_contain_text("at most 48 points")
    expect(_card(page, "mae").locator("circle.point").first).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-view")).to_be_visible()
    context.close()
    # Chromium reports the refused wrong password as a failed load; nothing else may go wrong.
    refused = f"console: Failed to load resource: the server responded with a status of 401 () at {live_server.url}"
    assert [f"{refused}/scouter/auth/login"] == problems
    assert [] == [url for url in urls if PASSWORD in url]
    assert all(url.startswith(live_server.url) for url in urls)  # nothing fetched from another origin
    assert 6 == len(list(shots.glob("*.png")))
