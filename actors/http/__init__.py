"""The HTTP front-end actor: quart-trio on hypercorn, serving the Scouter API, health and metrics."""

from ._alert_routes import blueprint as alert_blueprint
from ._app import create_app
from ._auth_routes import blueprint as auth_blueprint
from ._context import HttpContext, Readiness, context
from ._dashboard_routes import blueprint as dashboard_blueprint
from ._docs_routes import blueprint as docs_blueprint
from ._drift_routes import blueprint as drift_blueprint
from ._guard import Extractor, Source, authenticate, guarded, identity, json_body, json_object
from ._observability_routes import blueprint as observability_blueprint
from ._openapi import documented, openapi_document, undocumented
from ._out_of_scope_routes import blueprint as out_of_scope_blueprint
from ._ports import PortsActor, SharedPorts
from ._profile_routes import blueprint as profile_blueprint
from ._serve import serve_http
from ._user_routes import blueprint as user_blueprint

#: Every route group the server serves, in registration order (health and /metrics come with create_app).
API_BLUEPRINTS = (
    auth_blueprint,
    user_blueprint,
    profile_blueprint,
    drift_blueprint,
    observability_blueprint,
    alert_blueprint,
    dashboard_blueprint,
    docs_blueprint,
    out_of_scope_blueprint,
)

__all__ = [
    "API_BLUEPRINTS",
    "Extractor",
    "HttpContext",
    "PortsActor",
    "Readiness",
    "SharedPorts",
    "Source",
    "alert_blueprint",
    "auth_blueprint",
    "authenticate",
    "context",
    "create_app",
    "dashboard_blueprint",
    "docs_blueprint",
    "documented",
    "drift_blueprint",
    "guarded",
    "identity",
    "json_body",
    "json_object",
    "observability_blueprint",
    "openapi_document",
    "out_of_scope_blueprint",
    "profile_blueprint",
    "serve_http",
    "undocumented",
    "user_blueprint",
]
