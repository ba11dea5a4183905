"""The OpenAPI document and its pages (/scouter/docs): a valid OpenAPI 3.1 document covering every route the app
registers, whose response schemas accept the real client session's captured responses, served with a Swagger UI
page whose files all come from this server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry
from quart_trio import QuartTrio

from actors.http import (
    API_BLUEPRINTS,
    HttpContext,
    Readiness,
    create_app,
    openapi_document,
)
from actors.http._openapi import is_hidden
from actors.metrics import ScouterMetrics
from config import load_settings
from tests.captures import http_session

BLUEPRINTS = API_BLUEPRINTS
#: Routes left out of the document on purpose: the dashboard's page and files, the documentation itself.
HIDDEN = {"dashboard.index", "dashboard.asset", "docs.docs_page", "docs.openapi_json", "docs.docs_asset"}
#: Captured exchanges whose answers were made up by the capture harness, or that we answer differently on purpose.
NOT_OURS = {
    # upstream's 500 for a PSI query without a PSI profile: ours is a 404 (tests/actors/http/test_drift_queries.py)
    ("GET", "/scouter/drift/psi", 500),
}


def _app() -> QuartTrio:
    ctx = HttpContext(
        settings=load_settings({}),
        metrics=ScouterMetrics.create(CollectorRegistry(), process=False),
        readiness=lambda: Readiness(True, {}),
    )
    return create_app(ctx, BLUEPRINTS)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(_app())


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # "#/components/..." references resolve against the document's components
    return Draft202012Validator({**schema, "components": document["components"]})


def _response_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    operation = document["paths"][path][method.lower()]
    response = operation["responses"][str(status)]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    """openapi-spec-validator accepts the document, which declares OpenAPI 3.1."""
    validate(document)
    assert "3.1.0" == document["openapi"]


def test_every_registered_route_is_documented() -> None:
    """Each (path, method) of app.url_map is an operation, except the dashboard's and the docs' own routes."""
    app = _app()
    registered = set()
    hidden = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        if is_hidden(app.view_functions[rule.endpoint]):
            hidden.add(rule.endpoint)
            continue
        path = re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule.rule)
        registered |= {(path, method) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, method, _ in _operations(openapi_document(app))}
    assert HIDDEN == hidden
    assert registered == documented
    assert 23 == len(documented)


def test_protected_routes_declare_their_security_and_auth_answers(document: dict[str, Any]) -> None:
    """Every route behind the guard names the bearer scheme and documents 401; every route documents a 200."""
    app = _app()
    guarded = {
        re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if hasattr(app.view_functions[rule.endpoint], "__scouter_requirement__")
    }
    for path, method, operation in _operations(document):
        assert "200" in operation["responses"], (method, path)
        if path in guarded:
            assert {"bearer": []} in operation["security"], (method, path)
            assert "401" in operation["responses"], (method, path)
    assert {"bearer", "cookie", "bootstrap", "metricsToken"} == set(document["components"]["securitySchemes"])


def test_query_parameters_say_which_are_required(document: dict[str, Any]) -> None:
    """DriftRequest's query: the entity, interval, points and drift type required, the custom range optional."""
    parameters = document["paths"]["/scouter/drift/spc"]["get"]["parameters"]
    required = {p["name"]: p["required"] for p in parameters}
    assert {
        "space": True,
        "name": True,
        "version": True,
        "time_interval": True,
        "max_data_points": True,
        "drift_type": True,
        "begin_custom_datetime": False,
        "end_custom_datetime": False,
    } == required
    assert all("null" not in str(p["schema"]) for p in parameters)  # a query string has no null


def test_captured_responses_match_the_documented_schemas(document: dict[str, Any]) -> None:
    """Every response of the real client session (captures/http_session.jsonl) is valid against the schema the
    document gives its route and status, except answers the capture harness injected."""
    checked = 0
    for line in http_session():
        if "method" not in line:
            continue
        method, path, status, body = line["method"], line["path"], line["status"], line["response_body"]
        if body is None or "injected" in str(body.get("error", "")) or (method, path, status) in NOT_OURS:
            continue
        schema = _response_schema(document, method, path, status)
        errors = [error.message for error in _validator(document, schema).iter_errors(body)]
        assert [] == errors, (method, path, status)
        checked += 1
    assert checked >= 25


def test_client_parsed_shapes_reject_what_the_client_rejects(document: dict[str, Any]) -> None:
    """The schemas are strict where the client is: an alert id as a string, a numeric alert value, a missing
    `features` or a null drift value are all invalid."""
    alerts = _validator(document, _response_schema(document, "GET", "/scouter/alerts", 200))
    alert = {
        "created_at": "2026-11-22T17:06:43.680899Z",
        "name": "model",
        "space": "cap",
        "version": "1.0.0",
        "entity_name": "feature_0",
        "alert": {"zone": "Zone 4"},
        "id": 1,
        "drift_type": "Spc",
        "active": True,
    }
    assert alerts.is_valid({"alerts": [alert]})
    assert not alerts.is_valid({"alerts": [{**alert, "id": "1"}]})
    assert not alerts.is_valid({"alerts": [{**alert, "alert": {"zone": 4}}]})
    spc = _validator(document, _response_schema(document, "GET", "/scouter/drift/spc", 200))
    assert not spc.is_valid({})
    assert not spc.is_valid({"features": {"f": {"created_at": ["2026-11-22T17:06:39Z"], "values": [None]}}})
    tagged = _validator(document, _response_schema(document, "GET", "/scouter/profile", 200))
    profile = next(
        line
        for line in http_session()
        if (line.get("method"), line.get("path"), line.get("status")) == ("GET", "/scouter/profile", 200)
    )
    assert tagged.is_valid(profile["response_body"])
    assert not tagged.is_valid(next(iter(profile["response_body"].values())))  # untagged: "unknown variant"


def _with_examples(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list) and ("type" in node or "properties" in node or "anyOf" in node):
            yield node
        for value in node.values():
            yield from _with_examples(value)
    elif isinstance(node, list):
        for value in node:
            yield from _with_examples(value)


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    """Each schema's `examples` (request bodies, query parameters, captured responses) validates against it."""
    schemas = list(_with_examples(document))
    for schema in schemas:
        validator = _validator(document, {key: value for key, value in schema.items() if key != "examples"})
        for example in schema["examples"]:
            assert [] == [error.message for error in validator.iter_errors(example)], schema.get("title")
    assert len(schemas) >= 10


# --- the pages -------------------------------------------------------------------------------------------------------


async def test_the_json_is_the_document() -> None:
    """GET /scouter/docs/openapi.json answers the document as JSON, without a token."""
    app = _app()
    response = await app.test_client().get("/scouter/docs/openapi.json")
    assert (200, "application/json") == (response.status_code, response.mimetype)
    assert openapi_document(app) == await response.get_json()


async def test_the_page_loads_only_files_of_this_server() -> None:
    """The Swagger UI page references only /scouter/docs/... files, each served with its type; its policy allows no
    other origin and no inline script."""
    client = _app().test_client()
    page = await client.get("/scouter/docs")
    assert (200, "text/html") == (page.status_code, page.mimetype)
    html = await page.get_data(as_text=True)
    references = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    assert {
        "/scouter/docs/swagger-ui.css",
        "/scouter/docs/swagger-ui-bundle.js",
        "/scouter/docs/start.js",
        "/scouter/docs/favicon-32x32.png",
    } == references
    types = {}
    for reference in sorted(references):
        response = await client.get(reference)
        assert 200 == response.status_code, reference
        assert len(await response.get_data()) > 0
        types[reference.rsplit("/", 1)[1]] = response.mimetype
    assert {
        "swagger-ui.css": "text/css",
        "swagger-ui-bundle.js": "text/javascript",
        "start.js": "text/javascript",
        "favicon-32x32.png": "image/png",
    } == types
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    start = await (await client.get("/scouter/docs/start.js")).get_data(as_text=True)
    assert '"/scouter/docs/openapi.json"' in start
    assert "validatorUrl: null" in start  # no badge fetched from the outside validator
    assert "http" not in html + start
    assert "<script>" not in html  # no inline code


@pytest.mark.parametrize("name", ["index.html", "../_openapi.py", "swagger-ui.js.map", "nope"])
async def test_nothing_else_is_served_from_the_docs(name: str) -> None:
    """Only the page's own files are served under /scouter/docs/; anything else is a JSON 404."""
    response = await _app().test_client().get(f"/scouter/docs/{name}")
    assert 404 == response.status_code
