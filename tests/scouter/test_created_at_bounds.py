"""created_at is bounded at decode time: not before 1970, not more than the configured horizon ahead of now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from scouter.records import (
    DEFAULT_MAX_FUTURE,
    EARLIEST_CREATED_AT,
    CreatedAtBounds,
    DecodeError,
    decode_records_data,
    decode_server_records,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BOUNDS = CreatedAtBounds.around(NOW)


def _record(kind: str, created_at: str) -> dict[str, Any]:
    body: dict[str, Any] = {"created_at": created_at, "space": "sp", "name": "nm", "version": "1"}
    if kind == "Psi":
        body.update(feature="f", bin_id=1, bin_count=2)
    elif kind == "Custom":
        body.update(metric="m", value=1.0)
    else:
        body.update(feature="f", value=1.0)
    return {kind: body}


@pytest.mark.parametrize("kind", ["Spc", "Psi", "Custom"])
@pytest.mark.parametrize(
    ("created_at", "problem"),
    [
        ("9999-12-31T10:00:00Z", "must not be more than 1 day in the future (after 2026-12-08T12:00:00Z)"),
        ("9999-12-31T23:59:59.999999Z", "must not be more than 1 day in the future (after 2026-12-08T12:00:00Z)"),
        ("2026-12-08T12:00:00.000001Z", "must not be more than 1 day in the future (after 2026-12-08T12:00:00Z)"),
        ("0001-01-01T00:00:00Z", "must not be before 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.999999Z", "must not be before 1970-01-01T00:00:00Z"),
    ],
)
def test_created_at_out_of_bounds_is_a_decode_error_naming_field_and_bound(
    kind: str, created_at: str, problem: str
) -> None:
    """A hostile created_at (year 9999, year 1, just past either bound) is refused like any malformed field: the
    error names the record, the field and the bound; nothing of the message is decoded."""
    body = {"records": [_record("Spc", "2026-12-07T11:00:00Z"), _record(kind, created_at)]}
    with pytest.raises(DecodeError) as caught:
        decode_records_data(body, BOUNDS)
    assert f'records[1].{kind}.created_at: {problem}, got "{created_at}"' == caught.value.reason


def test_created_at_within_bounds_is_accepted_at_both_ends() -> None:
    """The epoch itself and exactly the horizon ahead are accepted."""
    body = {"records": [_record("Spc", "1970-01-01T00:00:00Z"), _record("Custom", "2026-12-08T12:00:00Z")]}
    batch = decode_records_data(body, BOUNDS)
    assert [EARLIEST_CREATED_AT, NOW + DEFAULT_MAX_FUTURE] == [batch.spc_rows[0][0], batch.custom_rows[0][0]]


def test_the_horizon_is_configurable() -> None:
    """A one-hour horizon refuses two hours ahead and says so in the message."""
    bounds = CreatedAtBounds.around(NOW, timedelta(hours=1))
    with pytest.raises(DecodeError, match=r"more than 1 hour in the future \(after 2026-12-07T13:00:00Z\)"):
        decode_records_data({"records": [_record("Spc", "2026-12-07T14:00:00Z")]}, bounds)
    assert 1 == decode_records_data({"records": [_record("Spc", "2026-12-07T12:59:00Z")]}, bounds).total


def test_default_bounds_follow_the_clock() -> None:
    """Without explicit bounds the decoder still bounds created_at, around the current time."""
    now = datetime.now(UTC)
    ahead = (now + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    with pytest.raises(DecodeError, match="created_at: must not be more than 1 day in the future"):
        decode_server_records(orjson.dumps({"records": [_record("Psi", ahead)]}))
    fine = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert 1 == decode_server_records(orjson.dumps({"records": [_record("Psi", fine)]})).total
