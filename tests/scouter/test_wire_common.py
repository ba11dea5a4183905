"""scouter.wire.common: faults of a body reported in declaration order, msgspec's errors in the house wording."""

from __future__ import annotations

import msgspec
import pytest

from scouter.wire.common import Fault, FaultyBody, convert_body, worded
from scouter.wire.v064 import UpdateAlertStatus
from scouter.wire.v064_records import ObservabilityServerRecord


def test_missing_fields_come_first_in_declaration_order() -> None:
    """A body missing `space` and holding a bad `id` is reported missing `space` first, whatever the key order
    (msgspec alone would name the bad `id`, the body's first key)."""
    with pytest.raises(FaultyBody) as caught:
        convert_body({"id": "1", "active": True}, UpdateAlertStatus)
    assert Fault("space", True, None, "missing") == caught.value.fault


def test_bad_values_are_reported_in_declaration_order() -> None:
    """With every field present, the first bad one in declaration order is named, with its value."""
    with pytest.raises(FaultyBody) as caught:
        convert_body({"space": 5, "active": "yes", "id": 1}, UpdateAlertStatus)
    assert ("active", False, "yes") == caught.value.fault[:3]


def test_a_good_body_converts() -> None:
    """Unknown fields are ignored, as serde does."""
    assert UpdateAlertStatus(7, False, "cap") == convert_body(
        {"id": 7, "active": False, "space": "cap", "x": 1}, UpdateAlertStatus
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"OK": 1}, ("route_metrics[0].status_codes", 'keys must be status codes (digits), got "OK"')),
        ({"200": 1, "500": -2}, ("route_metrics[0].status_codes.500", "must be a non-negative integer, got -2")),
    ],
)
def test_dict_entries_are_named_by_their_key(codes: dict[str, int], expected: tuple[str, str]) -> None:
    """msgspec reports a dict entry as `[...]`; the wording names the entry's key."""
    route = {"route_name": "/a", "metrics": dict.fromkeys(("p5", "p25", "p50", "p95", "p99"), 1.0)}
    route |= {"request_count": 1, "error_count": 0, "error_latency": 0.0}
    record = {"space": "s", "name": "n", "version": "1", "request_count": 1, "error_count": 0}
    record["route_metrics"] = [{**route, "status_codes": codes}]
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(record, ObservabilityServerRecord)
    assert expected == worded(caught.value, record, ObservabilityServerRecord)
