"""Routes of upstream v0.25.0 this server does not serve (server-v025.md §14): a clear 501, never a bare 404.

scouter-ml 0.25 calls some of them from features outside drift monitoring (GenAI evaluation, tracing, tags,
datasets). Each answers 501 ``{"error": "not implemented", "message": "<area> ..."}`` after authentication, so a user
sees what this server does not do. They are left out of the OpenAPI document (nothing to document but the refusal)
and listed in the README. The gRPC transport has no HTTP route; GenAI profiles and records, trace batches and tag
records on the ingest routes and brokers are refused or dropped where they arrive.
"""

from __future__ import annotations

from quart import Blueprint, Response

from scouter.auth import Requirement

from ._guard import guarded
from ._openapi import undocumented
from ._responses import json_response

blueprint = Blueprint("out_of_scope", __name__)

#: (area, [(method, path)]) of every upstream v0.25.0 route outside the drift path.
OUT_OF_SCOPE: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "GenAI evaluation",
        (
            ("GET", "/scouter/drift/genai/task"),
            ("GET", "/scouter/drift/genai/workflow"),
            ("GET", "/scouter/genai/task"),
            ("POST", "/scouter/genai/page/workflow"),
            ("POST", "/scouter/genai/page/record"),
        ),
    ),
    (
        "tracing",
        (
            ("GET", "/scouter/trace/baggage"),
            ("POST", "/scouter/trace/paginated"),
            ("GET", "/scouter/trace/spans"),
            ("POST", "/scouter/trace/spans/tags"),
            ("POST", "/scouter/trace/spans/filters"),
            ("POST", "/scouter/trace/metrics"),
            ("POST", "/scouter/v1/traces"),
            ("GET", "/scouter/v1/traces/<trace_id>/spans"),
            ("GET", "/scouter/trace/debug/recent"),
        ),
    ),
    ("tags", (("GET", "/scouter/tags"), ("POST", "/scouter/tags"), ("POST", "/scouter/tags/entity"))),
    (
        "datasets",
        (
            ("POST", "/scouter/datasets/register"),
            ("POST", "/scouter/datasets/sql"),
            ("GET", "/scouter/datasets"),
            ("POST", "/scouter/datasets/<catalog>/<schema>/<table>/records"),
            ("GET", "/scouter/datasets/<catalog>/<schema>/<table>/info"),
            ("GET", "/scouter/datasets/catalogs"),
            ("GET", "/scouter/datasets/catalogs/<catalog>/schemas"),
            ("GET", "/scouter/datasets/catalogs/<catalog>/schemas/<schema>/tables"),
            ("GET", "/scouter/datasets/catalogs/<catalog>/schemas/<schema>/tables/<table>"),
            ("GET", "/scouter/datasets/catalogs/<catalog>/schemas/<schema>/tables/<table>/preview"),
            ("POST", "/scouter/datasets/query"),
            ("POST", "/scouter/datasets/query/cancel"),
            ("POST", "/scouter/datasets/query/explain"),
        ),
    ),
)


def _refusal(area: str, method: str, path: str) -> object:
    message = (
        f"{method} {path}: {area} is not served by this server, which implements scouter's drift monitoring only "
        "(profiles, drift records, binned drift, alerts)"
    )

    @undocumented
    @guarded(Requirement.authenticated())
    async def refuse(**_: str) -> Response:
        return json_response({"error": "not implemented", "message": message}, 501)

    return refuse


def _endpoint(method: str, path: str) -> str:
    return f"{method.lower()}_{path.strip('/').replace('/', '_').replace('<', '').replace('>', '')}"


#: The blueprint's endpoint names (e.g. ``get_scouter_tags``), one per route.
ENDPOINTS = tuple(_endpoint(method, path) for _, routes in OUT_OF_SCOPE for method, path in routes)

for _area, _routes in OUT_OF_SCOPE:
    for _method, _path in _routes:
        blueprint.add_url_rule(_path, _endpoint(_method, _path), _refusal(_area, _method, _path), methods=[_method])
