"""Names upstream accepts, through every road: registered, ingested over HTTP and RabbitMQ, archived, read back.

Upstream v0.6.4 stores any space, name and version; `org/model` is a realistic one. The archive turns them into
folders, so each is percent-encoded into one safe path segment (scouter.archive.encode_segment). These tests run the
real server and the real archive command on a local folder and on an S3-compatible server (moto), and check that
nothing is written outside the storage root and every record comes back through the query routes, whose query
strings carry the names percent-encoded.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.actors.archive_support import S3Server, s3_server
from tests.drift_profiles import spc_profile
from tests.e2e.brokers import publish, query, server_env, start_server, wait_until
from tests.e2e.conftest import CLIENT_PYTHON, ROOT, AdminApi, LiveServer, clean_environment

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

__all__ = ["s3_server"]  # the fixture, imported for the tests below

#: Each is used as space, name and version at once.
NAMES = ["org/model", "..", "a\\b", "%2e%2e", "名前 ü", "tab\there\x01", "Org/Model"]
#: A whole hour two days ago: past a retention of one day, so the archive command takes it.
OLD = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def _wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(name: str, minute: int, value: float) -> dict[str, Any]:
    moment = OLD + timedelta(minutes=minute)
    fields = {"created_at": _wire(moment), "space": name, "name": name, "version": name}
    return {"Spc": {**fields, "feature": "f", "value": value}}


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    """(SCOUTER_STORAGE_URI, scratch folder): a local root inside the scratch folder, or an S3 bucket prefix."""
    with tempfile.TemporaryDirectory(prefix="scouter-names-") as scratch:
        if request.param == "local":
            yield str(Path(scratch) / "inner" / "storage"), Path(scratch)
        else:
            server: S3Server = request.getfixturevalue("s3_server")
            import boto3

            bucket = f"names-{secrets.token_hex(4)}"  # a bucket of its own: moto keeps buckets across its servers
            boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
            yield f"s3://{bucket}/prefix", Path(scratch)


def _stored_paths(uri: str, scratch: Path) -> list[str]:
    """Every object of the store, relative to its root."""
    if uri.startswith("s3://"):
        import boto3

        bucket, prefix = uri.removeprefix("s3://").split("/", 1)
        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT"], region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        assert all(k.startswith(prefix + "/") for k in keys), keys
        return sorted(k.removeprefix(prefix + "/") for k in keys)
    root = Path(uri)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_names_upstream_accepts_go_through_http_rabbitmq_archive_and_read_back(
    storage: tuple[str, Path], fresh_database_dsn: str, rabbitmq_url: str
) -> None:
    """Each name registers (profile, status, download), its records arrive over HTTP and RabbitMQ, the archive
    command writes them inside the storage root in encoded folders, and the drift and alert routes answer for them
    from the archive."""
    uri, scratch = storage
    queue = f"scouter_names_{secrets.token_hex(4)}"
    env = server_env(
        fresh_database_dsn,
        scratch,
        RABBITMQ_ADDR=rabbitmq_url,
        RABBITMQ_QUEUE=queue,
        RABBITMQ_CONSUMER_COUNT="1",
        DATA_RETENTION_PERIOD="1",
        SCOUTER_STORAGE_URI=uri,
        SCOUTER_DATA_DIR=str(scratch / "inner" / "data"),
    )
    server = start_server(env)
    try:
        api = AdminApi(server.url)
        for name in NAMES:
            api.register(spc_profile({"f": (0.0, 1.0)}, space=name, name=name, version=name))
            params = {"space": name, "name": name, "version": name, "drift_type": "Spc"}
            downloaded = api.call("GET", "/scouter/profile", params=params)
            assert (name, name, name) == tuple(downloaded["Spc"]["config"][k] for k in ("space", "name", "version"))
            api.records([_record(name, 1, 1.0), _record(name, 2, 3.0)])
        publish(rabbitmq_url, queue, [json.dumps({"records": [_record(n, 3, 5.0)]}).encode() for n in NAMES])

        def stored() -> int:
            sql = "SELECT count(*) FROM scouter.spc_drift WHERE space = ANY($1::text[])"
            return int(query(fresh_database_dsn, sql, NAMES)[0][0])

        wait_until(lambda: stored() == 3 * len(NAMES), 60, "every record", server)

        archive = subprocess.run(
            [sys.executable, "-m", "supervisors.main", "archive"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert 0 == archive.returncode, archive.stderr
        assert 0 == query(fresh_database_dsn, "SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")[0][0]
        assert 0 == query(fresh_database_dsn, "SELECT count(*) FROM scouter.quarantine")[0][0]

        window = {
            "time_interval": "TwentyFourHours",
            "max_data_points": "1",
            "begin_custom_datetime": _wire(OLD - timedelta(hours=1)),
            "end_custom_datetime": _wire(OLD + timedelta(hours=1)),
        }
        for name in NAMES:
            entity = {"space": name, "name": name, "version": name}
            drift = api.call("GET", "/scouter/drift/spc", params={**entity, **window, "drift_type": "Spc"})
            assert [3.0] == drift["features"]["f"]["values"], name
            alerts = api.call("GET", "/scouter/alerts", params={**entity, "active": "false"})
            assert [] == alerts["alerts"]
    finally:
        if "api" in locals():
            api.http.close()
        code = server.stop()
    assert 0 == code, server.log()[-4000:]

    logged = sorted(r["object_path"] for r in query(fresh_database_dsn, "SELECT object_path FROM scouter.archive_log"))
    assert len(NAMES) == len(logged)
    assert logged == _stored_paths(uri, scratch)
    for path in logged:
        assert all(part not in ("", ".", "..") for part in path.split("/")), path
        assert path.isprintable(), path
    outside = [p for p in scratch.rglob("*") if not p.is_relative_to(scratch / "inner")]
    assert [] == outside


CLIENT_SCRIPT = r"""
import json, tempfile, time
from pathlib import Path

import numpy as np
from scouter import Drifter, Feature, Features, ScouterQueue, SpcDriftConfig
from scouter.alert import SpcAlertConfig
from scouter.client import DriftRequest, GetProfileRequest, HTTPConfig, ScouterClient, TimeInterval
from scouter.types import DriftType

SPACE, NAME, VERSION = "edge", "org/model", "1.0.0"
rng = np.random.default_rng(3)
profile = Drifter().create_drift_profile(rng.normal(size=(500, 2)), SpcDriftConfig(
    space=SPACE, name=NAME, version=VERSION, sample_size=5, alert_config=SpcAlertConfig(schedule="0 0 0 * * *")))
if time.time() % 3600 > 3570:  # every record in one hour: one bucket of OneHour / max_data_points=1 below
    time.sleep(3601 - time.time() % 3600)
client = ScouterClient(HTTPConfig())
assert client.register_profile(profile, set_active=True)
# an explicit path: by default the client names the file "{name}_{space}_...json", a folder "org/" here
downloaded = client.download_profile(
    GetProfileRequest(name=NAME, space=SPACE, version=VERSION, drift_type=DriftType.Spc),
    Path(tempfile.mkdtemp()) / "downloaded.json")
assert NAME == json.loads(Path(downloaded).read_text())["Spc"]["config"]["name"]

path = Path(tempfile.mkdtemp()) / "spc.json"
profile.save_to_json(path)
queue = ScouterQueue.from_path({"spc": path}, HTTPConfig())
data = rng.normal(size=(50, 2))
for row in data:
    queue["spc"].insert(Features([Feature.float(f"feature_{i}", float(v)) for i, v in enumerate(row)]))
print(json.dumps({"means": [float(np.mean(data[:, i])) for i in range(2)]}), flush=True)
input()  # keep the queue open until the test has seen every record (client.md 4.1)
queue.shutdown()
binned = client.get_binned_drift(DriftRequest(name=NAME, space=SPACE, version=VERSION,
                                              time_interval=TimeInterval.OneHour, max_data_points=1,
                                              drift_type=DriftType.Spc))
print(json.dumps({f: binned.features[f].values for f in sorted(binned.features)}), flush=True)
"""


def test_real_client_registers_org_slash_model_and_its_records_are_stored(
    live_server: LiveServer, fresh_database_dsn: str
) -> None:
    """The 0.6.4 client's register_profile for name "org/model" succeeds (upstream accepts it; we answered 400 and
    the client raised 'Failed to insert profile'), its queue's records are stored, and the binned drift comes back."""
    if not CLIENT_PYTHON.exists():
        pytest.skip(f"no scouter-ml client venv at {CLIENT_PYTHON}")
    # run here rather than through run_client: the script waits on stdin until the test has seen the records
    with tempfile.TemporaryDirectory(prefix="scouter-client-") as cwd:
        proc = subprocess.Popen(
            [str(CLIENT_PYTHON), "-c", CLIENT_SCRIPT], cwd=cwd, env={**clean_environment(), **live_server.client_env()},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            if not first:
                raise AssertionError(proc.communicate(timeout=30)[1])
            expected = json.loads(first)["means"]
            sql = "SELECT count(*) FROM scouter.spc_drift WHERE space = 'edge' AND name = 'org/model'"
            wait_until(lambda: int(query(fresh_database_dsn, sql)[0][0]) == 20, 60, "the client's records")
            out, err = proc.communicate("\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert 0 == proc.returncode, err
    binned = json.loads(out.strip().splitlines()[-1])
    got = [binned[f"feature_{i}"][0] for i in range(2)]
    assert expected == pytest.approx(got, rel=1e-9)
