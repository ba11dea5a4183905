"""The HTTP front-end actor: quart-trio on hypercorn, serving the Scouter API, health and metrics."""

from ._app import create_app
from ._context import HttpContext, Readiness, context
from ._serve import serve_http

__all__ = ["HttpContext", "Readiness", "context", "create_app", "serve_http"]
