"""Alert route requests and rows: DriftAlertRequest queries, UpdateAlertStatus bodies, the strict alert shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from scouter.alert_requests import (
    AlertQuery,
    AlertRequestError,
    AlertUpdate,
    alert_document,
    parse_alert_query,
    parse_alert_update,
)
from scouter.wire.common import encode

BASE = {"name": "model", "space": "cap", "version": "1.0.0"}


def test_query_as_the_client_sends_it() -> None:
    """All of DriftAlertRequest: since, active=true, limit."""
    args = {**BASE, "limit_datetime": "2026-11-21T17:06:43.634961Z", "active": "true", "limit": "5"}

    since = dt.datetime(2026, 11, 21, 17, 6, 43, 634961, tzinfo=dt.UTC)
    assert AlertQuery("cap", "model", "1.0.0", since, True, 5) == parse_alert_query(args)


@pytest.mark.parametrize("args", [{**BASE, "active": "false"}, BASE])
def test_active_false_or_absent_means_every_alert(args: dict[str, str]) -> None:
    """``active=false`` (the client's default) and no ``active`` both mean all alerts (upstream quirk #15)."""
    assert AlertQuery("cap", "model", "1.0.0") == parse_alert_query(args)


def test_unencoded_plus_offset_is_read() -> None:
    """A '+' offset that arrived as a space after form decoding is read as '+'."""
    query = parse_alert_query({**BASE, "limit_datetime": "2026-11-21T19:06:43 02:00"})
    assert dt.datetime(2026, 11, 21, 17, 6, 43, tzinfo=dt.UTC) == query.since


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"space": "cap", "version": "1"}, "missing query parameter 'name'"),
        ({"name": "m", "version": "1"}, "missing query parameter 'space'"),
        ({**BASE, "active": "yes"}, "active: expected true or false, got 'yes'"),
        ({**BASE, "limit": "-1"}, "limit: must not be negative, got -1"),
        ({**BASE, "limit": "5.0"}, "limit: expected an integer, got '5.0'"),
        ({**BASE, "limit": "2147483648"}, "limit: out of range for a 32-bit integer, got '2147483648'"),
        ({**BASE, "limit_datetime": "2026-11-21T17:06:43"}, "limit_datetime: timestamp has no timezone (naive)"),
    ],
)
def test_bad_queries_name_the_field(args: dict[str, str], reason: str) -> None:
    """Every problem raises AlertRequestError naming the field (the route answers 400)."""
    with pytest.raises(AlertRequestError) as caught:
        parse_alert_query(args)
    assert caught.value.reason.startswith(reason)


def test_update_body() -> None:
    """UpdateAlertStatus; extra fields ignored."""
    assert AlertUpdate(7, False, "cap") == parse_alert_update({"id": 7, "active": False, "space": "cap", "x": 1})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"active": True, "space": "cap"}, "missing field 'id'"),
        ({"id": "7", "active": True, "space": "cap"}, 'id: expected a 32-bit integer, got "7"'),
        ({"id": True, "active": True, "space": "cap"}, "id: expected a 32-bit integer, got true"),
        ({"id": 2**31, "active": True, "space": "cap"}, "id: expected a 32-bit integer, got 2147483648"),
        ({"id": 1, "active": "false", "space": "cap"}, 'active: expected a boolean, got "false"'),
        ({"id": 1, "active": True, "space": None}, "space: expected a string, got null"),
    ],
)
def test_bad_update_bodies(body: dict[str, Any], reason: str) -> None:
    """Wrong shapes name the field (the route answers 422)."""
    with pytest.raises(AlertRequestError) as caught:
        parse_alert_update(body)
    assert reason == caught.value.reason


def test_alert_document_has_the_exact_shape_the_client_parses() -> None:
    """Upstream's field order, RFC 3339 with Z, integer id, string-only alert map (other values as JSON text)."""
    created = dt.datetime(2026, 11, 22, 17, 6, 43, 680899, tzinfo=dt.UTC)

    document = orjson.loads(
        encode(
            alert_document(
                created, "model", "cap", "1.0.0", "feature_0", '{"zone": "Zone 4", "n": 3, "x": null}', 1, "Spc", True
            )
        )
    )

    assert {
        "created_at": "2026-11-22T17:06:43.680899Z",
        "name": "model",
        "space": "cap",
        "version": "1.0.0",
        "entity_name": "feature_0",
        "alert": {"zone": "Zone 4", "n": "3", "x": "null"},
        "id": 1,
        "drift_type": "Spc",
        "active": True,
    } == document
    assert ["created_at", "name", "space", "version", "entity_name", "alert", "id", "drift_type", "active"] == list(
        document
    )
