"""The composition root's app serves the API documentation, and the document covers every route it registers but the
dashboard's and the documentation's own."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from actors.http import openapi_document
from actors.http._openapi import is_hidden
from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors.tree import Process, build_tree

DSN = "postgresql://scouter@127.0.0.1:1/none"  # never connected to: the tree is only built


def test_the_trees_app_documents_every_route() -> None:
    """/scouter/docs and its JSON are routes of the tree's app; every other non-dashboard route is an operation."""
    app = build_tree(
        load_settings({"DATABASE_URI": DSN}), Process(ScouterMetrics.create(CollectorRegistry(), process=False))
    ).app
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]
    assert {"/scouter/docs", "/scouter/docs/openapi.json"} <= {rule.rule for rule in rules}
    expected = {
        (re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in rules
        if not is_hidden(app.view_functions[rule.endpoint])
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    document = openapi_document(app)
    assert expected == {(path, method) for path, methods in document["paths"].items() for method in methods}
