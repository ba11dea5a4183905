"""The web dashboard's routes: GET /scouter/profiles on a real PostgreSQL (permission filtering, shapes), the page
and its assets (security headers, caching, nothing outside static/), their place in the tree and the wheel."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from actors.database import Database
from actors.http import dashboard_blueprint
from actors.http._dashboard_routes import STATIC
from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors.tree import Process, build_tree
from tests.drift_profiles import custom_profile, insert_profile, psi_profile, spc_profile

from ..auth_support import Api, bearer, make_api

ROOT = Path(__file__).resolve().parents[3]
NEXT = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
PREVIOUS = dt.datetime(2026, 11, 22, 0, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture
async def api(db: Database) -> Api:
    return await make_api(db, blueprints=[dashboard_blueprint])


async def _seed(db: Database) -> None:
    """Four profiles in two spaces, inserted out of order; one never scheduled (NULL next and previous run)."""
    profiles = [
        (custom_profile({"mae": 1.0}, {"mae": ("Above", 0.5)}, space="b", name="m2"), NEXT, PREVIOUS, False),
        (spc_profile({"f": (0.0, 1.0)}, space="a", name="m1", version="2.0.0"), NEXT, PREVIOUS, True),
        (psi_profile({"f": [0.5, 0.5]}, space="a", name="m1", version="1.0.0"), None, None, True),
        (spc_profile({"f": (0.0, 1.0)}, space="b", name="m2", schedule="0 0 * * * *"), NEXT, PREVIOUS, True),
    ]
    for profile, next_run, previous_run, active in profiles:
        await db.run(insert_profile, profile, next_run, previous_run, active)


async def _list(api: Api, token: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    response = await api.client.get("/scouter/profiles", query_string=query, headers=bearer(token))
    return response.status_code, await response.get_json()


def _entities(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(p["space"], p["name"], p["version"], p["drift_type"]) for p in body["profiles"]]


@pytest.mark.postgres
async def test_admin_lists_every_profile_sorted_with_its_schedule(api: Api, db: Database) -> None:
    """An admin gets every row, sorted by space, name, version, type, with RFC 3339 times or null."""
    await _seed(db)
    status, body = await _list(api, await api.login("admin", "admin"))
    assert 200 == status
    assert [
        ("a", "m1", "1.0.0", "Psi"),
        ("a", "m1", "2.0.0", "Spc"),
        ("b", "m2", "1.0.0", "Custom"),
        ("b", "m2", "1.0.0", "Spc"),
    ] == _entities(body)
    updated, uid = await db.fetchrow("SELECT updated_at, uid FROM scouter.drift_profile WHERE drift_type = 'Custom'")
    assert {
        "space": "b",
        "name": "m2",
        "version": "1.0.0",
        "drift_type": "Custom",
        "uid": uid,
        "active": False,
        "schedule": "0 0 0 * * *",
        "next_run": "2026-11-23T00:00:00.000000Z",
        "previous_run": "2026-11-22T00:00:00.123456Z",
        "updated_at": updated.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    } == body["profiles"][2]
    never_scheduled = body["profiles"][0]
    assert (None, None, True) == (
        never_scheduled["next_run"],
        never_scheduled["previous_run"],
        never_scheduled["active"],
    )
    assert "0 0 * * * *" == body["profiles"][3]["schedule"]


@pytest.mark.postgres
async def test_rows_of_unreadable_spaces_are_left_out(api: Api, db: Database) -> None:
    """A reader of space a sees a's rows only; read:all sees both; no read permission at all sees nothing."""
    await _seed(db)
    await api.create_user("areader", permissions=["read:a", "write:b"])
    await api.create_user("everything", permissions=["read:all"])
    await api.create_user("nobody", permissions=[])
    _, only_a = await _list(api, await api.login("areader", "areader"))
    assert [("a", "m1", "1.0.0", "Psi"), ("a", "m1", "2.0.0", "Spc")] == _entities(only_a)
    _, all_rows = await _list(api, await api.login("everything", "everything"))
    assert 4 == len(all_rows["profiles"])
    assert (200, {"profiles": []}) == await _list(api, await api.login("nobody", "nobody"))


@pytest.mark.postgres
async def test_space_filter_lists_one_space_and_hides_unreadable_ones(api: Api, db: Database) -> None:
    """?space=b lists b's rows; a caller who may not read b gets an empty list, as for a space without rows."""
    await _seed(db)
    await api.create_user("areader", permissions=["read:a"])
    _, b_rows = await _list(api, await api.login("admin", "admin"), {"space": "b"})
    assert [("b", "m2", "1.0.0", "Custom"), ("b", "m2", "1.0.0", "Spc")] == _entities(b_rows)
    reader = await api.login("areader", "areader")
    assert (200, {"profiles": []}) == await _list(api, reader, {"space": "b"})
    assert (200, {"profiles": []}) == await _list(api, reader, {"space": "nowhere"})
    admin = await api.login("admin", "admin")
    assert (200, {"profiles": []}) == await _list(api, admin, {"space": "a\x00"})  # no space can hold a NUL
    _, a_rows = await _list(api, reader, {"space": "a"})
    assert 2 == len(a_rows["profiles"])


@pytest.mark.postgres
async def test_listing_needs_a_valid_token(api: Api) -> None:
    """No token or a forged one: 401 with the guard's message; nothing is listed."""
    response = await api.client.get("/scouter/profiles")
    assert (401, "No access token provided") == (response.status_code, (await response.get_json())["message"])
    forged = bearer("not-a-token")
    response = await api.client.get("/scouter/profiles", headers=forged)
    assert (401, "Invalid token") == (response.status_code, (await response.get_json())["message"])


# --- the page and its assets -----------------------------------------------------------------------------------------


def _references(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', html))


@pytest.mark.postgres
async def test_page_and_every_asset_it_references_are_served_with_their_types(api: Api) -> None:
    """GET / is the page; every /ui/ file it names, and every module a script imports, answers 200 with its type."""
    page = await api.client.get("/")
    assert (200, "text/html; charset=utf-8") == (page.status_code, page.headers["Content-Type"])
    html = await page.get_data(as_text=True)
    wanted = _references(html)
    assert {"/ui/app.js", "/ui/dashboard.css", "/ui/favicon.svg"} <= wanted
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    seen: set[str] = set()
    while wanted - seen:
        path = sorted(wanted - seen)[0]
        seen.add(path)
        response = await api.client.get(path)
        assert (200, types[Path(path).suffix]) == (response.status_code, response.headers["Content-Type"]), path
        if path.endswith(".js"):
            text = await response.get_data(as_text=True)
            wanted |= {f"/ui/{name}" for name in re.findall(r'from "\./([^"]+)"', text)}
    assert {"/ui/api.js", "/ui/charts.js"} <= seen


@pytest.mark.postgres
async def test_page_forbids_inline_code_and_other_origins(api: Api) -> None:
    """The page's policy allows scripts, styles and requests from its own origin only, and no framing."""
    response = await api.client.get("/")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert ("'none'", "'self'", "'self'", "'self'", "'none'") == (
        policy["default-src"],
        policy["script-src"],
        policy["style-src"],
        policy["connect-src"],
        policy["frame-ancestors"],
    )
    assert ("nosniff", "no-referrer") == (
        response.headers["X-Content-Type-Options"],
        response.headers["Referrer-Policy"],
    )
    html = await response.get_data(as_text=True)
    assert re.search(r"<script>|<style|\sstyle=|\son[a-z]+=", html) is None  # nothing the policy would block


@pytest.mark.postgres
async def test_assets_revalidate_with_their_etag(api: Api) -> None:
    """Assets must be revalidated (no-cache) and a matching If-None-Match is a 304 without a body."""
    first = await api.client.get("/ui/app.js")
    assert "no-cache" == first.headers["Cache-Control"]
    again = await api.client.get("/ui/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert (304, b"") == (again.status_code, await again.get_data())


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["/ui/missing.js", "/ui/../_guard.py", "/ui/..%2F_guard.py", "/ui/static/app.js"])
async def test_nothing_outside_the_static_files_is_served(api: Api, path: str) -> None:
    """Unknown names and paths reaching out of static/ are 404."""
    response = await api.client.get(path)
    assert 404 == response.status_code


def test_the_tree_mounts_the_dashboard() -> None:
    """The server's app serves the page, its assets and the profile list."""
    settings = load_settings({"DATABASE_URI": "postgresql://nobody@127.0.0.1:9/none"})
    tree = build_tree(settings, Process(metrics=ScouterMetrics.create(CollectorRegistry(), process=False)))
    rules = {rule.rule for rule in tree.app.url_map.iter_rules()}
    assert {"/", "/ui/<path:name>", "/scouter/profiles"} <= rules


def test_every_static_file_ships_in_the_distribution() -> None:
    """pyproject's package data names every file of actors/http/static, so an installed server has its page."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["actors.http"]
    package = ROOT / "actors" / "http"
    files = [path.relative_to(package).as_posix() for path in STATIC.iterdir()]
    assert files
    assert [] == [name for name in files if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
