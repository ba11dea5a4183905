"""The pure pieces of scouter-ml 0.25 support: version resolution, 0.25 records and their entities, the superset
profile, both custom-condition spellings in the drift check, and the typed alert map."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from scouter.alert_pages import alert_map
from scouter.checks import custom_findings
from scouter.entities import Entity, UnknownUid, resolve_uids
from scouter.profile_superset import superset_document
from scouter.profiles import CustomDriftProfile, parse_profile
from scouter.records import DecodeError, decode_server_records
from scouter.versions import VersionError, next_version
from scouter.wire.v025 import AlertMap, CustomAlertBody, PsiAlertBody, SpcAlertBody

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _existing(*versions: str) -> list[tuple[str, datetime]]:
    return [(v, T0 + timedelta(minutes=i)) for i, v in enumerate(versions)]


@pytest.mark.parametrize(
    ("existing", "requested", "kind", "pre", "expected"),
    [
        ((), "1.0.0", "Minor", None, "1.0.0"),  # the client's verified sequence (server-v025.md §5.2)
        (("1.0.0",), "1.0.0", "Minor", None, "1.1.0"),
        ((), None, "Minor", None, "0.1.0"),
        (("0.1.0",), None, "Minor", None, "0.2.0"),
        ((), "2.1", "Minor", None, "2.1.0"),
        (("1.2.3", "2.0.0"), "1", "Patch", None, "1.2.4"),
        (("1.2.3", "1.3.0"), "~1.2.3", "Major", None, "2.0.0"),
        (("1.2.3",), "^1.2", "Minor", None, "1.3.0"),  # upstream fails on a short caret version
        ((), "1.0.0-rc.1", "Minor", None, "1.0.0-rc.1"),  # upstream answers 500 on a pre-release
        (("1.0.0-rc.1",), "1.0.0", "Minor", None, "1.1.0"),
        (("1.0.0",), "1.0.0", "Pre", "rc.2", "1.0.0-rc.2"),
        (("legacy", "v2"), None, "Minor", None, "0.1.0"),  # 0.6.4 accepted any version string: never a candidate
    ],
)
def test_next_version(
    existing: tuple[str, ...], requested: str | None, kind: str, pre: str | None, expected: str
) -> None:
    assert expected == next_version(_existing(*existing), requested, kind, pre)


def test_next_version_names_what_it_cannot_read() -> None:
    with pytest.raises(VersionError, match=r"version_request\.version"):
        next_version([], "one.two", "Minor")
    with pytest.raises(VersionError, match="version_type"):
        next_version([], None, "Sideways")


def _spc_uid(uid: str, value: object = 1.5, kind: str = "Spc") -> dict[str, object]:
    field = "metric" if kind == "Custom" else "feature"
    return {kind: {"created_at": "2026-12-07T04:22:45.331706458Z", "uid": uid, field: "f", "value": value,
                   "entity_id": 0}}  # fmt: skip


def test_records_of_both_clients_make_the_same_rows() -> None:
    old = {"Spc": {"created_at": "2026-12-07T04:22:45.331706458Z", "space": "s", "name": "m", "version": "1.0.0",
                   "feature": "f", "value": 1.5}}  # fmt: skip
    entities = {"u1": Entity("u1", "s", "m", "1.0.0", "Spc")}
    both = decode_server_records(json.dumps({"records": [old, _spc_uid("u1")]}))
    assert 1 == len(both.uid_rows)
    rows = resolve_uids(both, entities).spc_rows
    assert rows[0] == rows[1]


def test_a_record_is_never_filed_under_a_guess() -> None:
    batch = decode_server_records(json.dumps({"records": [_spc_uid("u1"), _spc_uid("u2")]}))
    with pytest.raises(UnknownUid, match="'u2'"):
        resolve_uids(batch, {"u1": Entity("u1", "s", "m", "1.0.0", "Spc")})
    custom = decode_server_records(json.dumps({"records": [_spc_uid("u1", kind="Custom")]}))
    with pytest.raises(UnknownUid, match="Spc profile"):
        resolve_uids(custom, {"u1": Entity("u1", "s", "m", "1.0.0", "Spc")})


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (_spc_uid("u1", True), "records[0].Spc.value: expected a number, got true"),
        (_spc_uid(""), "records[0].Spc.uid"),
        (_spc_uid("a\x00b"), "records[0].Spc.uid: must not contain NUL"),
        ({"Psi": {"created_at": "2026-12-07T04:22:45Z", "uid": "u", "feature": "f", "bin_id": -1, "bin_count": 1}},
         "records[0].Psi.bin_id"),
    ],
)  # fmt: skip
def test_bad_uid_records_are_named(record: dict[str, object], fragment: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_server_records(json.dumps({"records": [record]}).encode())
    assert fragment in caught.value.reason


def test_out_of_scope_payloads_are_dropped_and_counted() -> None:
    assert (("trace", 1),) == decode_server_records(b'{"request": {}}').dropped
    tag = b'{"entity_type": "x", "entity_id": 1, "key": "k", "value": "v"}'
    assert (("tag", 1),) == decode_server_records(tag).dropped
    mixed = decode_server_records(json.dumps({"records": [{"GenAIEval": {}}, _spc_uid("u1")]}))
    assert ((("GenAIEval", 1),), 1) == (mixed.dropped, len(mixed.uid_rows))


def _custom_profile(conditions: dict[str, object], metrics: dict[str, float]) -> CustomDriftProfile:
    doc = {"config": {"sample_size": 5, "space": "s", "name": "m", "version": "1.0.0",
                      "alert_config": {"dispatch_config": {"Console": {"enabled": True}}, "schedule": "0 0 0 * * *",
                                       "alert_conditions": conditions}, "drift_type": "Custom"},
           "metrics": metrics, "scouter_version": "0.25.0"}  # fmt: skip
    profile = parse_profile("Custom", json.dumps(doc))
    assert isinstance(profile, CustomDriftProfile)
    return profile


def test_the_check_reads_both_custom_condition_spellings() -> None:
    """0.6.4: baseline from metrics, margin alert_threshold_value; 0.25: baseline_value and delta."""
    old = _custom_profile({"mae": {"alert_threshold": "Above", "alert_threshold_value": 0.5}}, {"mae": 1.0})
    new = _custom_profile({"mae": {"alert_threshold": "Above", "baseline_value": 2.0, "delta": 0.5}}, {"mae": 1.0})
    assert 1 == len(custom_findings(old, {"mae": 1.6}).alerts)
    assert 0 == len(custom_findings(new, {"mae": 1.6}).alerts)  # below the 0.25 baseline + delta
    assert 1 == len(custom_findings(new, {"mae": 2.6}).alerts)


def test_superset_profile_carries_what_both_clients_need() -> None:
    old = {"config": {"uid": "client-made", "version": "1.0", "alert_config": {"alert_conditions": {
        "mae": {"alert_threshold": "Above", "alert_threshold_value": 0.5}}}}, "metrics": {"mae": 1.0}}  # fmt: skip
    doc = superset_document("Custom", old, "entity-uid", "1.0.0")
    assert ("entity-uid", "1.0.0") == (doc["config"]["uid"], doc["config"]["version"])
    assert {"alert_threshold": "Above", "alert_threshold_value": 0.5, "delta": 0.5, "baseline_value": 1.0} == (
        doc["config"]["alert_config"]["alert_conditions"]["mae"]
    )
    assert "client-made" == old["config"]["uid"]  # the stored document is not modified
    assert {"QuantileBinning": {"num_bins": 10}} == superset_document("Psi", {"config": {}}, "u", "v")["config"][
        "binning_strategy"
    ]


def test_stored_alert_maps_render_as_typed_alerts() -> None:
    spc = alert_map("Spc", {"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"})
    assert AlertMap(Spc=SpcAlertBody("f", "OutOfBounds", "Zone4")) == spc
    assert AlertMap(Psi=PsiAlertBody("f", 0.3, 0.1)) == alert_map("Psi", {"entity_name": "f", "psi": "0.3",
                                                                            "threshold": "0.1"})  # fmt: skip
    custom = alert_map("Custom", {"entity_name": "mae", "training_metric_value": "1", "observed_metric_value": "2",
                                  "alert_threshold_value": "None", "alert_threshold": "Above"})  # fmt: skip
    assert AlertMap(Custom=CustomAlertBody("mae", 1.0, 2.0, None, "Above")) == custom
    assert "None" == alert_map("Spc", {"unexpected": "map"})


def test_uid_records_get_the_created_at_bounds_of_every_record() -> None:
    """A 0.25 record dated 9999 or before 1970 is refused like a 0.6.4 one (SCOUTER_MAX_FUTURE_SECONDS)."""
    for stamp, fragment in (("9999-12-31T10:00:00Z", "in the future"), ("1969-12-31T23:59:59Z", "before 1970")):
        record = _spc_uid("u1")
        record["Spc"]["created_at"] = stamp  # type: ignore[index]
        with pytest.raises(DecodeError) as caught:
            decode_server_records(json.dumps({"records": [record]}))
        assert caught.value.reason.startswith("records[0].Spc.created_at: must not be")
        assert fragment in caught.value.reason


def test_a_dropped_first_record_of_any_shape_is_only_counted() -> None:
    """An out-of-scope GenAI record whose body is not an object is dropped and counted, not a crash."""
    batch = decode_server_records(b'{"records": [{"GenAIEval": [1]}, {"GenAIEval": null}]}')
    assert ((("GenAIEval", 2),), None, 0) == (batch.dropped, batch.first_space, batch.total)
