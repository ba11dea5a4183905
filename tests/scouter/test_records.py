"""The ServerRecords wire codec: captured traffic, timestamps, types, paths and the COPY row shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scouter.records import (
    CUSTOM_COLUMNS,
    OBSERVABILITY_COLUMNS,
    PSI_COLUMNS,
    SPC_COLUMNS,
    CustomRecord,
    DecodedBatch,
    DecodeError,
    ObservabilityRecord,
    PsiRecord,
    SpcRecord,
    check_entity_name,
    decode_records_data,
    decode_server_records,
    parse_rfc3339,
)
from scouter.wire.timestamps import parse_created_at, parse_created_at_fast
from tests.captures import broker_messages, http_session


def _http_drift_bodies() -> list[dict[str, Any]]:
    return [line["body_json"] for line in http_session() if line.get("path") == "/scouter/drift"]


def _broker_bodies() -> list[dict[str, Any]]:
    kafka = [message["value"] for message in broker_messages("kafka")]
    rabbit = [message["body"] for message in broker_messages("rabbitmq")]
    return kafka + rabbit


def _first_of_kind(kind: str) -> dict[str, Any]:
    for body in _http_drift_bodies() + _broker_bodies():
        if kind in body["records"][0]:
            return body
    raise AssertionError(f"no captured {kind} body")


def _spc(**fields: Any) -> dict[str, Any]:
    record = {
        "created_at": "2026-11-22T17:05:50.702063181Z",
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "feature": "feature_0",
        "value": 1.5,
    }
    record.update(fields)
    return {"Spc": record}


def _psi(**fields: Any) -> dict[str, Any]:
    record = {
        "created_at": "2026-11-22T17:05:53.701621671Z",
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "feature": "feature_1",
        "bin_id": 1,
        "bin_count": 7,
    }
    record.update(fields)
    return {"Psi": record}


def _custom(**fields: Any) -> dict[str, Any]:
    record = {
        "created_at": "2026-11-22T17:05:50.701335919Z",
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "metric": "mae",
        "value": 11.5,
    }
    record.update(fields)
    return {"Custom": record}


ROUTE = {
    "route_name": "/home",
    "metrics": {"p5": 1.0, "p25": 2.0, "p50": 3.0, "p95": 9.0, "p99": 10.0},
    "request_count": 3,
    "error_count": 1,
    "error_latency": 5.0,
    "status_codes": {"200": 2, "500": 1},
}


def _observability(**fields: Any) -> dict[str, Any]:
    record = {"space": "sp", "name": "nm", "version": "1.0.0", "request_count": 3, "error_count": 1}
    record["route_metrics"] = [ROUTE]
    record.update(fields)
    return {"Observability": record}


def _decode(*records: dict[str, Any]) -> DecodedBatch:
    return decode_server_records(orjson.dumps({"records": list(records)}))


def _error(*records: dict[str, Any]) -> str:
    with pytest.raises(DecodeError) as info:
        _decode(*records)
    return str(info.value)


# --- captured traffic -------------------------------------------------------------------------------------------


def test_captured_http_spc_body_decodes() -> None:
    """The client's HTTP SPC body (keys sorted alphabetically) decodes to SPC records in message order."""
    body = next(b for b in _http_drift_bodies() if "Spc" in b["records"][0])
    batch = decode_server_records(orjson.dumps(body))
    expected = [
        (record["Spc"]["feature"], record["Spc"]["value"], record["Spc"]["space"]) for record in body["records"]
    ]
    assert expected == [(r.feature, r.value, r.space) for r in batch.spc]
    assert (len(body["records"]), 0, 0, 0) == (
        len(batch.spc),
        len(batch.psi),
        len(batch.custom),
        len(batch.observability),
    )


def test_captured_psi_body_decodes() -> None:
    """A captured PSI body decodes every (feature, bin) count, zero counts included."""
    body = _first_of_kind("Psi")
    batch = decode_server_records(orjson.dumps(body))
    expected = [(r["Psi"]["feature"], r["Psi"]["bin_id"], r["Psi"]["bin_count"]) for r in body["records"]]
    assert expected == [(r.feature, r.bin_id, r.bin_count) for r in batch.psi]


def test_captured_custom_body_decodes() -> None:
    """A captured custom-metric body decodes to a CustomRecord with its metric and value."""
    body = _first_of_kind("Custom")
    batch = decode_server_records(orjson.dumps(body))
    record = body["records"][0]["Custom"]
    assert [(record["metric"], float(record["value"]))] == [(r.metric, r.value) for r in batch.custom]


def test_every_captured_message_decodes_on_every_transport() -> None:
    """Every captured HTTP, Kafka and RabbitMQ message decodes, with one record per wire record."""
    bodies = _http_drift_bodies() + _broker_bodies()
    assert [len(b["records"]) for b in bodies] == [decode_server_records(orjson.dumps(b)).total for b in bodies]


def test_struct_order_and_sorted_keys_decode_alike() -> None:
    """Key order never matters: reversed keys give the same records."""
    body = _first_of_kind("Spc")
    reversed_body = {"records": [{k: dict(reversed(v.items())) for k, v in r.items()} for r in body["records"]]}
    assert decode_server_records(orjson.dumps(body)) == decode_server_records(orjson.dumps(reversed_body))


def test_accepts_str_and_bytearray_bodies() -> None:
    """The body may arrive as bytes, bytearray or str."""
    text = orjson.dumps({"records": [_spc()]}).decode()
    assert decode_server_records(text) == decode_server_records(bytearray(text.encode()))


# --- timestamps -------------------------------------------------------------------------------------------------


def test_nanosecond_timestamp_truncates_to_microseconds_utc() -> None:
    """A 9-digit fraction is truncated (not rounded) to microseconds, in UTC."""
    batch = _decode(_spc(created_at="2026-11-22T17:05:50.702063181Z"))
    assert datetime(2026, 11, 22, 17, 5, 50, 702063, tzinfo=UTC) == batch.spc[0].created_at
    assert batch.spc[0].created_at.tzinfo is UTC


def test_fraction_just_below_a_second_does_not_round_up() -> None:
    """.999999999 stays in the same second (truncation)."""
    assert datetime(2026, 1, 1, 0, 0, 59, 999999, tzinfo=UTC) == parse_rfc3339("2026-01-01T00:00:59.999999999Z")


def test_offset_timestamp_converted_to_utc() -> None:
    """A +02:00 offset is converted to UTC."""
    batch = _decode(_spc(created_at="2026-11-22T19:05:50.123456789+02:00"))
    assert datetime(2026, 11, 22, 17, 5, 50, 123456, tzinfo=UTC) == batch.spc[0].created_at
    assert batch.spc[0].created_at.tzinfo is UTC


def test_negative_offset_crossing_midnight() -> None:
    """A -05:30 offset moves the UTC date forward."""
    assert datetime(2026, 11, 23, 4, 30, tzinfo=UTC) == parse_rfc3339("2026-11-22T23:00:00-05:30")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T17:05:50Z", datetime(2026, 11, 22, 17, 5, 50, tzinfo=UTC)),
        ("2026-11-22T17:05:50.7Z", datetime(2026, 11, 22, 17, 5, 50, 700000, tzinfo=UTC)),
        ("2026-11-22T17:05:50.123456Z", datetime(2026, 11, 22, 17, 5, 50, 123456, tzinfo=UTC)),
        ("2026-11-22T17:05:50.1234567+00:00", datetime(2026, 11, 22, 17, 5, 50, 123456, tzinfo=UTC)),
    ],
)
def test_fraction_lengths_accepted(text: str, expected: datetime) -> None:
    """0 to 9 fractional digits are accepted, with Z or an offset."""
    assert expected == parse_rfc3339(text)


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30)),
    st.integers(0, 999),
    st.one_of(st.none(), st.integers(0, 29)),
    st.characters(max_codepoint=0x7F),
)
def test_client_form_fast_path_agrees_with_the_general_parser(
    moment: datetime, nanos: int, position: int | None, char: str
) -> None:
    """The clients' own form takes a fast path (`parse_created_at_fast`): on that form it gives what the general
    RFC 3339 parser gives, and anything else, one character changed anywhere, it leaves to that parser (None)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos:03d}Z"
    if position is not None:
        text = text[:position] + char + text[position + 1 :]
    try:
        expected: datetime | None = parse_rfc3339(text)
    except ValueError:
        expected = None
    fast = parse_created_at_fast(text)
    assert fast is None or fast == expected
    if position is None:
        assert fast == expected == moment.replace(tzinfo=UTC)
    if expected is not None:
        assert parse_created_at(text) == expected


def test_fast_path_leaves_other_forms_and_non_ascii_digits_to_the_general_parser() -> None:
    for text in (
        "2026-W47-1T17:07:44.598856597Z",  # a week date, which fromisoformat alone would take
        "2026-11-22 17:07:44.598856597Z",
        "2026-11-22T17:07:44.598856x97Z",  # past the microseconds, which fromisoformat does not look at
        "2026-11-22T17:07:44.59885\uff1697Z",  # a fullwidth digit
        "2026-11-22T17:07:44.598856597z",
        "2026-11-22T17:07:44.598856597Z\n",
    ):
        assert parse_created_at_fast(text) is None, text


def test_names_joined_past_the_cheap_bound_are_accepted_when_each_fits() -> None:
    """The cheap test joins a record's names; a long join only sends it to the exact check, which accepts it."""
    long = "n" * 120
    batch = _decode(_spc(space=long, name=long, version=long, feature=long))
    assert batch.spc[0].space == long
    assert batch.spc[0].feature == long


def test_naive_timestamp_is_an_error() -> None:
    """A timestamp without Z or an offset is rejected, saying it is naive."""
    message = _error(_spc(created_at="2026-11-22T17:05:50.702063181"))
    assert message.startswith("records[0].Spc.created_at: timestamp has no timezone (naive)")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22 17:05:50Z",  # space instead of T
        "20261122T170550Z",  # ISO 8601 basic format
        "2026-11-22T17:05Z",  # no seconds
        "2026-W47-1T17:05:50.702063181Z",  # week date, same length as the client's form
        "2026-11-22T17:05:50.1234567890Z",  # 10 fractional digits
        "2026-11-22T17:05:50.Z",  # empty fraction
        "2026-11-22T17:05:50,5Z",  # comma fraction
        "2026-11-22T17:05:50+0200",  # offset without colon
        "2026-11-22T17:05:50+02:75",  # offset minutes out of range
        "2026-13-22T17:05:50.702063181Z",  # month 13, client's form
        "2026-11-22T17:05:60Z",  # leap second
        "2026-11-22T17:05:50.70206318１Z",  # non-ASCII digit
        "2026-11-22t17:05:50z",
        "",
    ],
)
def test_malformed_timestamps_rejected(text: str) -> None:
    """Strings that are not RFC 3339 with Z or ±HH:MM are rejected with the field path."""
    assert _error(_spc(created_at=text)).startswith("records[0].Spc.created_at: ")


def test_timestamp_of_wrong_type_rejected() -> None:
    """A numeric created_at is rejected naming the expected type."""
    assert "records[0].Psi.created_at: expected an RFC 3339 timestamp string, got 1700000000" == _error(
        _psi(created_at=1700000000)
    )


def test_offset_at_the_edge_of_time_is_an_error_not_a_crash() -> None:
    """Converting 0001-01-01T00:00+01:00 to UTC overflows: a DecodeError, not an OverflowError."""
    assert _error(_spc(created_at="0001-01-01T00:00:00+01:00")).startswith(
        "records[0].Spc.created_at: invalid timestamp"
    )


# --- numbers ----------------------------------------------------------------------------------------------------


def test_string_value_rejected_with_path_and_value() -> None:
    """A string where a number belongs names the record index, kind, field and value."""
    records = [_spc(), _spc(), _spc(), _spc(value="abc")]
    assert 'records[3].Spc.value: expected a number, got "abc"' == _error(*records)


def test_boolean_is_not_a_number() -> None:
    """true is not accepted as a value."""
    assert "records[0].Custom.value: expected a number, got true" == _error(_custom(value=True))


def test_integer_accepted_as_float() -> None:
    """An integer value becomes a float."""
    value = _decode(_custom(value=3)).custom[0].value
    assert (3.0, float) == (value, type(value))


def test_json_nan_and_overflowing_numbers_are_invalid_json() -> None:
    """NaN literals and 1e400 (infinite as a double) are rejected as invalid JSON."""
    for body in (b'{"records":[{"Spc":{"value":NaN}}]}', b'{"records":[{"Spc":{"value":1e400}}]}'):
        with pytest.raises(DecodeError, match=r"^body is not valid JSON: "):
            decode_server_records(body)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_rejected_in_parsed_documents(value: float) -> None:
    """NaN and ±inf in an already parsed document are rejected."""
    with pytest.raises(DecodeError, match=r"^records\[0\]\.Spc\.value: must be a finite number"):
        decode_records_data({"records": [_spc(value=value)]})


def test_integer_too_large_for_a_float_rejected() -> None:
    """An integer beyond the float range (possible only in parsed documents) is rejected, not an OverflowError."""
    with pytest.raises(
        DecodeError, match=r"^records\[0\]\.Custom\.value: is too large for a float, got an integer of 1329 bits$"
    ):
        decode_records_data({"records": [_custom(value=10**400)]})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bin_count", -1, "must be a non-negative integer, got -1"),
        ("bin_count", 2.0, "must be a non-negative integer, got 2.0"),
        ("bin_count", "7", 'must be a non-negative integer, got "7"'),
        ("bin_count", False, "must be a non-negative integer, got false"),
        ("bin_id", 2**31, "must be at most 2147483647, got 2147483648"),
    ],
)
def test_bad_psi_integers_rejected(field: str, value: object, message: str) -> None:
    """bin_id and bin_count must be integers in 0..2**31-1 (postgres integer)."""
    assert f"records[2].Psi.{field}: {message}" == _error(_psi(), _psi(), _psi(**{field: value}))


def test_psi_integer_limits_accepted() -> None:
    """0 and 2**31-1 are valid bin ids and counts."""
    record = _decode(_psi(bin_id=0, bin_count=2**31 - 1)).psi[0]
    assert (0, 2**31 - 1) == (record.bin_id, record.bin_count)


# --- structure --------------------------------------------------------------------------------------------------


def test_unknown_kind_rejected() -> None:
    """An unknown record kind is named."""
    assert 'records[0]: unknown record kind "Foo"' == _error({"Foo": {"a": 1}})


def test_two_kinds_in_one_record_rejected() -> None:
    """A record object must hold exactly one kind."""
    message = _error({**_spc(), **_psi()})
    assert 'records[0]: expected exactly one record kind, got 2 ("Spc", "Psi")' == message


def test_record_that_is_not_an_object_rejected() -> None:
    """A bare string in the list is rejected."""
    with pytest.raises(DecodeError) as info:
        decode_records_data({"records": [_spc(), "Spc"]})
    assert 'records[1]: expected an object like {"Spc": {...}}, got "Spc"' == str(info.value)


def test_record_body_that_is_not_an_object_rejected() -> None:
    """The body under the kind must be an object."""
    assert "records[0].Custom: expected an object, got [1,2]" == _error({"Custom": [1, 2]})


def test_missing_field_named() -> None:
    """A missing field is named with its path."""
    record = _custom()
    del record["Custom"]["metric"]
    assert "records[1].Custom.metric: missing field" == _error(_custom(), record)


def test_missing_created_at_named() -> None:
    """A missing created_at is named with its path."""
    record = _spc()
    del record["Spc"]["created_at"]
    assert "records[0].Spc.created_at: missing field" == _error(record)


def test_wrong_string_type_named() -> None:
    """A number where feature belongs is named."""
    assert "records[0].Psi.feature: expected a string, got 3" == _error(_psi(feature=3))


def test_list_where_string_belongs_named() -> None:
    """An unhashable value where a string belongs is named, not a TypeError."""
    assert 'records[0].Spc.feature: expected a string, got ["a"]' == _error(_spc(feature=["a"]))
    assert 'records[0].Spc.name: expected a string, got {"a":1}' == _error(_spc(name={"a": 1}))


def test_nul_in_feature_rejected() -> None:
    """A NUL in a feature name (which postgres text cannot store) is rejected."""
    assert 'records[0].Spc.feature: must not contain NUL, got "a\\u0000b"' == _error(_spc(feature="a\x00b"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "body is not valid JSON: "),
        (b"[]", 'body: expected an object with a "records" list, got []'),
        (b"{}", "records: missing field"),
        (b'{"records": {"Spc": {}}}', 'records: expected a list, got {"Spc":{}}'),
        (b'{"records": null}', "records: expected a list, got null"),
    ],
)
def test_top_level_errors(body: bytes, message: str) -> None:
    """Problems with the envelope name the body or the records field."""
    with pytest.raises(DecodeError) as info:
        decode_server_records(body)
    assert str(info.value).startswith(message)


def test_empty_records_give_empty_batch() -> None:
    """An empty list decodes to an empty batch with no first space."""
    batch = decode_server_records(b'{"records": []}')
    assert (0, None, (), (), (), ()) == (
        batch.total,
        batch.first_space,
        batch.spc_rows,
        batch.psi_rows,
        batch.custom_rows,
        batch.observability_rows,
    )


def test_unknown_extra_fields_ignored() -> None:
    """Extra fields in a record and next to records are ignored (forward compatibility)."""
    plain = _decode(_spc())
    body = {"records": [_spc(uid="x", tags={"a": 1})], "meta": 1}
    assert plain == decode_server_records(orjson.dumps(body))


def test_decode_error_carries_reason() -> None:
    """DecodeError is a ValueError whose reason is its message."""
    with pytest.raises(ValueError, match="unknown record kind") as info:
        _decode({"Foo": {}})
    assert str(info.value) == info.value.reason  # type: ignore[attr-defined]


# --- mixed kinds and rows ---------------------------------------------------------------------------------------


def test_mixed_kinds_split_by_kind_in_order() -> None:
    """A message mixing kinds is split by kind; each kind keeps message order."""
    batch = _decode(_psi(bin_id=1), _spc(feature="a"), _custom(), _spc(feature="b"), _psi(bin_id=2))
    assert ["a", "b"] == [r.feature for r in batch.spc]
    assert [1, 2] == [r.bin_id for r in batch.psi]
    assert ["mae"] == [r.metric for r in batch.custom]
    assert 5 == batch.total


def test_first_space_is_space_of_first_record() -> None:
    """first_space comes from the first record of the message, whatever its kind."""
    assert "second" == _decode(_custom(space="second"), _spc(space="first")).first_space


def test_spc_rows_in_column_order() -> None:
    """SPC rows follow SPC_COLUMNS: created_at, name, space, version, feature, value."""
    row = _decode(_spc()).spc_rows[0]
    assert ("created_at", "name", "space", "version", "feature", "value") == SPC_COLUMNS
    assert (datetime(2026, 11, 22, 17, 5, 50, 702063, tzinfo=UTC), "nm", "sp", "1.0.0", "feature_0", 1.5) == row


def test_psi_rows_in_column_order() -> None:
    """PSI rows follow PSI_COLUMNS and end with bin_id, bin_count."""
    row = _decode(_psi()).psi_rows[0]
    assert ("created_at", "name", "space", "version", "feature", "bin_id", "bin_count") == PSI_COLUMNS
    assert (datetime(2026, 11, 22, 17, 5, 53, 701621, tzinfo=UTC), "nm", "sp", "1.0.0", "feature_1", 1, 7) == row


def test_custom_rows_in_column_order() -> None:
    """Custom rows follow CUSTOM_COLUMNS with the metric name."""
    row = _decode(_custom()).custom_rows[0]
    assert ("created_at", "name", "space", "version", "metric", "value") == CUSTOM_COLUMNS
    assert (datetime(2026, 11, 22, 17, 5, 50, 701335, tzinfo=UTC), "nm", "sp", "1.0.0", "mae", 11.5) == row


def test_records_and_rows_agree() -> None:
    """The typed records rebuilt from rows carry the same values."""
    batch = _decode(_spc(), _psi(), _custom())
    expected = (
        SpcRecord(datetime(2026, 11, 22, 17, 5, 50, 702063, tzinfo=UTC), "sp", "nm", "1.0.0", "feature_0", 1.5),
        PsiRecord(datetime(2026, 11, 22, 17, 5, 53, 701621, tzinfo=UTC), "sp", "nm", "1.0.0", "feature_1", 1, 7),
        CustomRecord(datetime(2026, 11, 22, 17, 5, 50, 701335, tzinfo=UTC), "sp", "nm", "1.0.0", "mae", 11.5),
    )
    assert expected == (batch.spc[0], batch.psi[0], batch.custom[0])


def test_from_records_round_trips() -> None:
    """DecodedBatch.from_records builds the same batch the decoder does, first space included."""
    batch = _decode(_custom(space="x"), _spc(), _psi(), _observability())
    records = [*batch.custom, *batch.spc, *batch.psi, *batch.observability]
    assert batch == DecodedBatch.from_records(records)


def test_from_records_rejects_other_objects() -> None:
    """from_records refuses values that are not records."""
    with pytest.raises(TypeError, match="not a record"):
        DecodedBatch.from_records([object()])  # type: ignore[list-item]


# --- observability ----------------------------------------------------------------------------------------------


def test_observability_record_decodes() -> None:
    """An Observability record decodes with its counts and route metrics; it has no created_at."""
    batch = _decode(_observability())
    assert (ObservabilityRecord("sp", "nm", "1.0.0", 3, 1, (ROUTE,)),) == batch.observability


def test_observability_row_has_route_metrics_as_json_text() -> None:
    """The observability row ends with route_metrics serialised as JSON text for the jsonb column."""
    row = _decode(_observability()).observability_rows[0]
    assert ("space", "name", "version", "request_count", "error_count", "route_metrics") == OBSERVABILITY_COLUMNS
    assert ("sp", "nm", "1.0.0", 3, 1) == row[:5]
    assert [ROUTE] == json.loads(row[5])


def test_observability_route_keeps_known_fields_only() -> None:
    """Unknown fields of a route are dropped from the stored JSON; integer percentiles stay as given."""
    route = {**ROUTE, "metrics": {**ROUTE["metrics"], "p5": 1, "p1": 0.5}, "debug": "x\x00"}
    stored = json.loads(_decode(_observability(route_metrics=[route])).observability_rows[0][5])
    assert [{**ROUTE, "metrics": {**ROUTE["metrics"], "p5": 1}}] == stored


def test_observability_with_no_routes() -> None:
    """An empty route_metrics list is stored as '[]'."""
    assert "[]" == _decode(_observability(route_metrics=[])).observability_rows[0][5]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({**ROUTE, "route_name": 5}, "route_metrics[0].route_name: expected a string without NUL, got 5"),
        ({**ROUTE, "metrics": {"p5": 1.0}}, "route_metrics[0].metrics.p25: missing field"),
        (
            {**ROUTE, "metrics": {**ROUTE["metrics"], "p99": "x"}},
            'route_metrics[0].metrics.p99: expected a number, got "x"',
        ),
        ({**ROUTE, "request_count": -1}, "route_metrics[0].request_count: must be a non-negative integer, got -1"),
        (
            {**ROUTE, "status_codes": {"OK": 1}},
            'route_metrics[0].status_codes: keys must be status codes (digits), got "OK"',
        ),
        (
            {**ROUTE, "status_codes": {"200": 1.5}},
            "route_metrics[0].status_codes.200: must be a non-negative integer, got 1.5",
        ),
        ({k: v for k, v in ROUTE.items() if k != "error_latency"}, "route_metrics[0].error_latency: missing field"),
        ("x", 'route_metrics[0]: expected an object, got "x"'),
    ],
)
def test_bad_route_metrics_rejected(route: object, message: str) -> None:
    """Route metrics follow upstream's RouteMetrics shape; each problem is named with its path."""
    assert f"records[0].Observability.{message}" == _error(_observability(route_metrics=[route]))


def test_observability_counts_are_postgres_integers() -> None:
    """request_count above 2**31-1 is rejected (the column is integer)."""
    message = _error(_observability(request_count=2**31))
    assert "records[0].Observability.request_count: must be at most 2147483647, got 2147483648" == message


def test_observability_route_metrics_must_be_a_list() -> None:
    """route_metrics must be a list."""
    assert "records[0].Observability.route_metrics: expected a list, got {}" == _error(_observability(route_metrics={}))


# --- entity names ---------------------------------------------------------------------------------------------

#: Names upstream v0.6.4 stores and the client sends; the archive encodes them into safe path segments.
UPSTREAM_NAMES = [
    "org/model",
    "..",
    ".",
    "a\\b",
    "%2e%2e",
    "/etc",
    "名前",
    "modèle-α",
    "tab\there",
    "a\nb",
    "\x7f",
    "a\x85b",
    "x\x01y",
    "a\u200bb",
    "...",
    ".hidden",
    "my model v1.0",
    "é" * 200,
]


@pytest.mark.parametrize(("value", "problem"), [("", "must not be empty"), ("a\x00b", "must not contain NUL")])
def test_only_empty_names_and_nul_are_refused(value: str, problem: str) -> None:
    """The empty string (no entity) and NUL (PostgreSQL text cannot hold it) are refused, naming field and rule."""
    with pytest.raises(DecodeError) as info:
        check_entity_name("space", value)
    assert f"space: {problem}, got {orjson.dumps(value).decode()}" == str(info.value)


@pytest.mark.parametrize("field", ["space", "name", "version"])
def test_forbidden_name_in_a_record(field: str) -> None:
    """A record whose space, name or version is empty is rejected with its path."""
    assert f'records[0].Custom.{field}: must not be empty, got ""' == _error(_custom(**{field: ""}))


@pytest.mark.parametrize("value", UPSTREAM_NAMES)
def test_names_upstream_accepts_are_accepted(value: str) -> None:
    """Slashes, backslashes, dot names, escapes, unicode, control characters and long names: upstream stores them,
    so do we (the archive encodes them, see scouter.archive.encode_segment)."""
    check_entity_name("name", value)
    decoded = _decode(_spc(space=value, name=value, version=value)).spc[0]
    assert (value, value, value) == (decoded.space, decoded.name, decoded.version)


def test_entity_name_must_be_a_string() -> None:
    """check_entity_name rejects non-strings."""
    with pytest.raises(DecodeError, match=r"^version: expected a string, got 1$"):
        check_entity_name("version", 1)


def test_bad_name_in_a_later_record_is_found() -> None:
    """The per-message cache of checked names does not hide a bad value in a later record."""
    assert 'records[2].Spc.space: must not be empty, got ""' == _error(_spc(), _spc(), _spc(space=""))


def test_truncates_long_values_in_messages() -> None:
    """A huge bad value is shortened in the error message."""
    assert f'records[0].Spc.value: expected a number, got "{"x" * 76}...' == _error(_spc(value="x" * 1000))


def test_naive_datetime_is_never_produced() -> None:
    """Every decoded timestamp is aware and in UTC, also for offsets like +05:45."""
    created = _decode(_spc(created_at="2026-11-22T22:50:50+05:45")).spc[0].created_at
    assert (timedelta(0), datetime(2026, 11, 22, 17, 5, 50, tzinfo=UTC)) == (created.utcoffset(), created)
