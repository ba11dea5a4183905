"""The API's documentation: the OpenAPI document at ``/scouter/docs/openapi.json`` and a Swagger UI page at
``/scouter/docs``.

The page's script and styles are swagger-ui's own distribution files, shipped by the `swagger-ui-py` package (Swagger
UI 5, which renders OpenAPI 3.1) and served from this process: nothing is fetched from another origin. The page
starts Swagger UI with a script file of ours, not inline code, so the same strict Content-Security-Policy as the
dashboard's applies (Swagger UI needs inline styles and ``data:`` images, nothing more).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import attrs
from quart import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from ._openapi import openapi_document, undocumented
from ._responses import json_response

blueprint = Blueprint("docs", __name__)

DOCS = "/scouter/docs"
OPENAPI = f"{DOCS}/openapi.json"

#: The swagger-ui files the page loads, from the `swagger-ui-py` package's ``static/`` folder.
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Scouter API</title>
  <link rel="icon" type="image/png" href="{DOCS}/favicon-32x32.png">
  <link rel="stylesheet" href="{DOCS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS}/swagger-ui-bundle.js"></script>
  <script src="{DOCS}/start.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to an outside validator for its badge.
START = f"""window.ui = SwaggerUIBundle({{
  url: "{OPENAPI}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
"""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str


def swagger_ui_dir() -> Path:
    """The swagger-ui distribution of the installed `swagger-ui-py` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, hashlib.sha256(body).hexdigest()[:20])


@functools.cache
def assets() -> dict[str, Asset]:
    """Everything the page loads, by name, read once; nothing else can be served from here."""
    folder = swagger_ui_dir()
    found = {name: _asset((folder / name).read_bytes(), kind) for name, kind in SWAGGER_FILES.items()}
    found["start.js"] = _asset(START.encode(), "text/javascript; charset=utf-8")
    return found


async def _serve(body: bytes, content_type: str, etag: str) -> Response:
    response = Response(body, content_type=content_type)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    response.headers.update(_SECURITY_HEADERS)
    return await response.make_conditional(request)


@blueprint.get(DOCS)
@undocumented
async def docs_page() -> Response:
    page = _asset(PAGE.encode(), "text/html; charset=utf-8")
    return await _serve(page.body, page.content_type, page.etag)


@blueprint.get(OPENAPI)
@undocumented
async def openapi_json() -> Response:
    return json_response(openapi_document(current_app._get_current_object()))


@blueprint.get(f"{DOCS}/<name>")
@undocumented
async def docs_asset(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise NotFound()
    return await _serve(asset.body, asset.content_type, asset.etag)
