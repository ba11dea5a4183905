"""The real scouter-ml 0.25.0 client (its own venv) against the real server, beside the 0.6.4 client.

* HTTP path: login; SPC, PSI and custom profiles registered with ``set_active=True`` (the server picks the versions
  and returns the uids; registering again bumps the version); downloads; records through ``ScouterQueue`` over HTTP;
  binned drift by uid compared with values the script computes itself from its raw data; the poller's alerts for
  planted drift, read page by page.
* Cross-client (server-v025.md §13): an entity registered and fed by 0.6.4 read back by 0.25 (download, binned drift
  by the uid found in the downloaded profile, alerts), and one registered and fed by 0.25 read back by 0.6.4.
* Brokers: the 0.25 queue over Kafka and RabbitMQ; each record stored under its uid's entity.
"""

from __future__ import annotations

import json
import math
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.brokers import broker_settings, query, running_server, wait_until
from tests.e2e.conftest import CLIENT_V025_PYTHON, LiveServer, run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

#: What both 0.25 scripts share: imports, profiles, expected values computed from the raw data.
COMMON = r"""
import datetime as dt, json, math, os, sys, tempfile, time
from pathlib import Path

import numpy as np
from scouter import (CustomMetric, CustomMetricDriftConfig, Drifter, HttpConfig, KafkaConfig, PsiDriftConfig,
                     RabbitMQConfig, ScouterQueue, SpcDriftConfig)
from scouter.alert import AlertThreshold, CustomMetricAlertConfig, PsiAlertConfig, SpcAlertConfig
from scouter.client import (DriftAlertPaginationRequest, DriftRequest, GetProfileRequest, ScouterClient,
                            TimeInterval)
from scouter.queue import Features, Metric, Metrics
from scouter.types import DriftType

SERVER = os.environ["SCOUTER_SERVER_URI"]
SPACE = os.environ.get("E2E_SPACE", "e2e25")
cfg = HttpConfig(server_uri=SERVER, username="admin", password="admin")
ROWS, SAMPLE = 1000, 25
MAE = [0.5 + 0.01 * i for i in range(20)]
rng = np.random.default_rng(17)
baseline = rng.normal(size=(2000, 3))
drifter = Drifter()

def profiles(spc_schedule="0 0 0 * * *"):
    spc = drifter.create_drift_profile(baseline, SpcDriftConfig(
        space=SPACE, name="model", version="1.0.0", sample_size=SAMPLE,
        alert_config=SpcAlertConfig(schedule=spc_schedule)))
    psi = drifter.create_drift_profile(baseline, PsiDriftConfig(
        space=SPACE, name="model", alert_config=PsiAlertConfig(schedule="0 0 0 * * *")))
    custom = drifter.create_drift_profile(
        [CustomMetric("mae", 1.0, AlertThreshold.Above, 0.5)],
        CustomMetricDriftConfig(space=SPACE, name="model", version="2.1", sample_size=5,
                                alert_config=CustomMetricAlertConfig(schedule="0 0 0 * * *")))
    return {"spc": spc, "psi": psi, "custom": custom}

def saved(registered):
    scratch = Path(tempfile.mkdtemp())
    paths = {}
    for alias, profile in registered.items():
        paths[alias] = scratch / f"{alias}.json"
        profile.save_to_json(paths[alias])
    return paths

data = rng.normal(loc=0.3, size=(ROWS, 3))
data[:, 0] += 10.0   # far beyond feature_0's control limits: the poller must alert

def feed(queue):
    for row in data:
        features = Features(features={f"feature_{i}": float(v) for i, v in enumerate(row)})
        queue["spc"].insert(features)
        queue["psi"].insert(features)
    for value in MAE:
        queue["custom"].insert(Metrics([Metric("mae", value)]))

expected_spc = {f"feature_{i}": float(np.mean([np.mean(data[k:k + SAMPLE, i]) for k in range(0, ROWS, SAMPLE)]))
                for i in range(3)}
batch_means = [float(np.mean(MAE[k:k + 5])) for k in range(0, len(MAE), 5)]
expected_mae = [float(np.mean(batch_means)), float(np.std(batch_means, ddof=1))]

def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)

def window_request(uid, start):
    return DriftRequest(uid=uid, space=SPACE, time_interval=TimeInterval.Custom, max_data_points=1,
                        start_datetime=start, end_datetime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5))

def read_back(client, uids, start):
    spc = client.get_binned_drift(window_request(uids["spc"], start), DriftType.Spc)
    custom = client.get_binned_drift(window_request(uids["custom"], start), DriftType.Custom)
    psi = client.get_binned_drift(window_request(uids["psi"], start), DriftType.Psi)
    result = {
        "spc": {f: list(m.values) for f, m in spc.features.items()},
        "custom": {m: [[s.avg, s.lower_bound, s.upper_bound] for s in v.stats] for m, v in custom.metrics.items()},
        "psi": {f: [list(m.psi), {int(k): v for k, v in m.bins.items()}] for f, m in psi.features.items()},
    }
    done = (set(result["spc"]) == set(expected_spc)
            and all(len(v) == 1 and close(v[0], expected_spc[f]) for f, v in result["spc"].items())
            and len(result["custom"].get("mae", [])) == 1 and close(result["custom"]["mae"][0][0], expected_mae[0])
            and len(result["psi"]) == 3)
    return done, result
"""

HTTP_SCRIPT = (
    COMMON
    + r"""
start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
client = ScouterClient(cfg)
registered = profiles(spc_schedule="*/5 * * * * *")
answers = {}
for alias, profile in registered.items():
    assert client.register_profile(profile, set_active=True)
    answers[alias] = [profile.config.uid, profile.config.version]
again = profiles()["spc"]
assert client.register_profile(again, set_active=True)
answers["spc_again"] = [again.config.uid, again.config.version]

scratch = Path(tempfile.mkdtemp())
downloads = {}
for alias, drift_type in (("spc", DriftType.Spc), ("psi", DriftType.Psi), ("custom", DriftType.Custom)):
    profile = registered[alias]
    path = client.download_profile(GetProfileRequest(name="model", space=SPACE, version=profile.config.version,
                                                     drift_type=drift_type), scratch / f"{alias}.json")
    downloaded = json.loads(Path(path).read_text())
    config = next(iter(downloaded.values()))["config"] if len(downloaded) == 1 else downloaded["config"]
    downloads[alias] = [config["uid"], config["version"]]

queue = ScouterQueue.from_path(saved(registered), cfg)
time.sleep(1.5)   # the 0.25 queue logs in asynchronously, after from_path returned
feed(queue)
uids = {alias: uid for alias, (uid, _) in answers.items()}
deadline = time.monotonic() + 60
done, result = read_back(client, uids, start)
while not done and time.monotonic() < deadline:
    time.sleep(0.5)
    done, result = read_back(client, uids, start)
queue.shutdown()

# alerts of the planted drift, written by the poller (every 5 s), read one per page
pages, cursor = [], None
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    first = client.get_alerts(DriftAlertPaginationRequest(uid=uids["spc"], active=True, limit=1))
    if first.items:
        break
    time.sleep(0.5)
pages.append([[a.id, a.entity_name, a.active, a.created_at.tzinfo is not None] for a in first.items])
page = first
while page.has_next and len(pages) < 10:
    c = page.next_cursor
    page = client.get_alerts(DriftAlertPaginationRequest(uid=uids["spc"], active=True, limit=1,
                                                         cursor_created_at=c.created_at, cursor_id=c.id,
                                                         direction="next"))
    pages.append([[a.id, a.entity_name, a.active, a.created_at.tzinfo is not None] for a in page.items])
everything = client.get_alerts(DriftAlertPaginationRequest(uid=uids["spc"]))
print("REPORT " + json.dumps({"answers": answers, "downloads": downloads, "done": done, "result": result,
                  "expected": {"spc": expected_spc, "mae": expected_mae}, "pages": pages,
                  "all_alerts": [a.id for a in everything.items]}))
"""
)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _report(stdout: str) -> dict[str, Any]:
    """The script's report line (the client's Rust logger may write to stdout too)."""
    lines = [line for line in stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, stdout[-3000:]
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("REPORT "))
    return report


def run_v025(script: str, env: dict[str, str], timeout: float = 240.0) -> dict[str, Any]:
    result = run_client(script, env, timeout, python=CLIENT_V025_PYTHON)
    assert 0 == result.returncode, result.stderr[-4000:]
    return _report(result.stdout)


def test_v025_client_http_path(live_server: LiveServer) -> None:
    """Registration answers, downloads, the HTTP queue, binned drift by uid with the client's own numbers, and
    the poller's alerts paged one by one."""
    try:
        report = run_v025(HTTP_SCRIPT, live_server.client_env())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nserver log:\n{live_server.log()[-4000:]}") from None
    answers = report["answers"]
    assert {"spc": "1.0.0", "psi": "0.1.0", "custom": "2.1.0", "spc_again": "1.1.0"} == {
        alias: version for alias, (_, version) in answers.items()
    }
    assert len({uid for uid, _ in answers.values()}) == 4
    for alias in ("spc", "psi", "custom"):
        assert answers[alias] == report["downloads"][alias]
    assert report["done"], json.dumps(report)[:3000]
    for feature, values in report["result"]["spc"].items():
        assert _close(report["expected"]["spc"][feature], values[0])
    ((avg, lower, upper),) = report["result"]["custom"]["mae"]
    mean, sd = report["expected"]["mae"]
    assert (_close(mean, avg), _close(mean - sd, lower), _close(mean + sd, upper)) == (True, True, True)
    pages = report["pages"]
    assert pages[0], "no alert from the poller within 40 s"
    assert all(len(page) == 1 for page in pages)
    ids = [page[0][0] for page in pages]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(report["all_alerts"])
    assert "feature_0" in {page[0][1] for page in pages}
    assert all(active and aware for page in pages for _, _, active, aware in page)


V064_FEED = r"""
import json, os, tempfile, time
from pathlib import Path
import numpy as np
from scouter import (CustomMetric, CustomMetricDriftConfig, Drifter, Feature, Features, Metric, Metrics,
                     ScouterQueue, SpcDriftConfig)
from scouter.alert import AlertThreshold, CustomMetricAlertConfig, SpcAlertConfig
from scouter.client import DriftRequest, HTTPConfig, ScouterClient, TimeInterval
from scouter.types import DriftType

SPACE = os.environ["E2E_SPACE"]
rng = np.random.default_rng(23)
drifter = Drifter()
spc = drifter.create_drift_profile(rng.normal(size=(500, 2)), SpcDriftConfig(
    space=SPACE, name="model", version="1.0.0", sample_size=10, alert_config=SpcAlertConfig(schedule="*/5 * * * * *")))
custom = drifter.create_drift_profile(
    [CustomMetric("mae", 1.0, AlertThreshold.Above, 0.5)],
    CustomMetricDriftConfig(space=SPACE, name="model", version="1.0.0", sample_size=5,
                            alert_config=CustomMetricAlertConfig(schedule="0 0 0 * * *")))
client = ScouterClient(HTTPConfig())
for profile in (spc, custom):
    assert client.register_profile(profile, set_active=True)
scratch = Path(tempfile.mkdtemp())
paths = {"spc": scratch / "spc.json", "custom": scratch / "custom.json"}
spc.save_to_json(paths["spc"]); custom.save_to_json(paths["custom"])
queue = ScouterQueue.from_path(paths, HTTPConfig())
data = rng.normal(loc=50.0, size=(100, 2))
for row in data:
    queue["spc"].insert(Features([Feature.float(f"feature_{i}", float(v)) for i, v in enumerate(row)]))
for value in (1.0, 2.0, 3.0, 4.0, 5.0):
    queue["custom"].insert(Metrics([Metric("mae", value)]))
expected = {f"feature_{i}": float(np.mean([np.mean(data[k:k + 10, i]) for k in range(0, 100, 10)])) for i in range(2)}
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    got = client.get_binned_drift(DriftRequest(name="model", space=SPACE, version="1.0.0",
                                               time_interval=TimeInterval.OneHour, max_data_points=1,
                                               drift_type=DriftType.Spc))
    values = {f: list(m.values) for f, m in got.features.items()}
    if all(len(values.get(f, [])) == 1 and abs(values[f][0] - mean) < 1e-9 for f, mean in expected.items()):
        break  # every sample is stored
    time.sleep(0.5)
queue.shutdown()
print(json.dumps({"expected": expected}))
"""

V025_READS_V064 = r"""
import datetime as dt, json, os, tempfile, time
from pathlib import Path
from scouter import HttpConfig
from scouter.client import DriftAlertPaginationRequest, DriftRequest, GetProfileRequest, ScouterClient, TimeInterval
from scouter.types import DriftType

SPACE = os.environ["E2E_SPACE"]
client = ScouterClient(HttpConfig(server_uri=os.environ["SCOUTER_SERVER_URI"], username="admin", password="admin"))
scratch = Path(tempfile.mkdtemp())
uids = {}
for alias, drift_type in (("spc", DriftType.Spc), ("custom", DriftType.Custom)):
    path = client.download_profile(GetProfileRequest(name="model", space=SPACE, version="1.0.0",
                                                     drift_type=drift_type), scratch / f"{alias}.json")
    doc = json.loads(Path(path).read_text())
    uids[alias] = (next(iter(doc.values())) if len(doc) == 1 else doc)["config"]["uid"]
spc = client.get_binned_drift(DriftRequest(uid=uids["spc"], space=SPACE, time_interval=TimeInterval.OneHour,
                                           max_data_points=1), DriftType.Spc)
custom = client.get_binned_drift(DriftRequest(uid=uids["custom"], space=SPACE, time_interval=TimeInterval.OneHour,
                                              max_data_points=1), DriftType.Custom)
deadline = time.monotonic() + 40
alerts = []
while time.monotonic() < deadline and not alerts:
    alerts = client.get_alerts(DriftAlertPaginationRequest(uid=uids["spc"], active=True)).items
    time.sleep(0.5)
print("REPORT " + json.dumps({"uids": uids, "spc": {f: list(m.values) for f, m in spc.features.items()},
                  "custom": {m: [s.avg for s in v.stats] for m, v in custom.metrics.items()},
                  "alerts": sorted({a.entity_name for a in alerts})}))
"""

V064_READS_V025 = r"""
import json, os, tempfile
from pathlib import Path
from scouter.client import DriftAlertRequest, DriftRequest, GetProfileRequest, HTTPConfig, ScouterClient, TimeInterval
from scouter.types import DriftType

SPACE = os.environ["E2E_SPACE"]
client = ScouterClient(HTTPConfig())
scratch = Path(tempfile.mkdtemp())
report = {"downloads": {}}
for alias, drift_type, version in (("spc", DriftType.Spc, "1.0.0"), ("psi", DriftType.Psi, "0.1.0"),
                                   ("custom", DriftType.Custom, "2.1.0")):
    path = client.download_profile(GetProfileRequest(name="model", space=SPACE, version=version,
                                                     drift_type=drift_type), scratch / f"{alias}.json")
    doc = json.loads(Path(path).read_text())
    # 0.6.4 writes its own re-serialisation, without the fields it does not know (config.uid)
    report["downloads"][alias] = (next(iter(doc.values())) if len(doc) == 1 else doc)["config"]["version"]
    binned = client.get_binned_drift(DriftRequest(name="model", space=SPACE, version=version,
                                                  time_interval=TimeInterval.OneHour, max_data_points=1,
                                                  drift_type=drift_type))
    if alias == "custom":
        report[alias] = {m: [s.avg for s in v.stats] for m, v in binned.metrics.items()}
    else:
        report[alias] = {f: list(getattr(m, "values", getattr(m, "psi", []))) for f, m in binned.features.items()}
report["alerts"] = sorted({a.entity_name for a in client.get_alerts(
    DriftAlertRequest(name="model", space=SPACE, version="1.0.0", active=True))})
print(json.dumps(report))
"""


def test_cross_client_reads(live_server: LiveServer) -> None:
    """What one client registered and fed, the other downloads and reads back (server-v025.md §13)."""
    env = live_server.client_env(E2E_SPACE="cross64")
    fed = run_client(V064_FEED, env, 180)
    assert 0 == fed.returncode, f"{fed.stderr[-3000:]}\n{live_server.log()[-3000:]}"
    expected = json.loads(fed.stdout.strip().splitlines()[-1])["expected"]
    read = run_v025(V025_READS_V064, env)
    for feature, mean in expected.items():
        assert _close(mean, read["spc"][feature][0]), (feature, mean, read["spc"])
    assert [3.0] == read["custom"]["mae"]
    assert "feature_0" in read["alerts"]  # the poller's alert for the 0.6.4 entity, through POST /scouter/alerts

    env25 = live_server.client_env(E2E_SPACE="cross25")
    fed25 = run_v025(HTTP_SCRIPT, env25)
    assert fed25["done"]
    read64 = run_client(V064_READS_V025, env25, 120)
    assert 0 == read64.returncode, f"{read64.stderr[-3000:]}\n{live_server.log()[-3000:]}"
    report = json.loads(read64.stdout.strip().splitlines()[-1])
    for alias in ("spc", "psi", "custom"):
        assert fed25["answers"][alias][1] == report["downloads"][alias]
    for feature, values in fed25["result"]["spc"].items():
        assert _close(values[0], report["spc"][feature][0])
    assert _close(fed25["result"]["custom"]["mae"][0][0], report["custom"]["mae"][0])
    assert "feature_0" in report["alerts"]


BROKER_SCRIPT = (
    COMMON
    + r"""
client = ScouterClient(cfg)
registered = profiles()
for profile in registered.values():
    assert client.register_profile(profile, set_active=True)
if os.environ["E2E_TRANSPORT"] == "kafka":
    transport = KafkaConfig(brokers=os.environ["KAFKA_BROKERS"], topic=os.environ["KAFKA_TOPIC"])
else:
    transport = RabbitMQConfig(queue=os.environ["RABBITMQ_QUEUE"])  # the address from RABBITMQ_ADDR
queue = ScouterQueue.from_path(saved(registered), transport)
time.sleep(1)
feed(queue)
print("REPORT " + json.dumps({"uids": {a: [p.config.uid, p.config.version] for a, p in registered.items()},
                             "expected": {"spc": expected_spc, "mae": expected_mae}}), flush=True)
done = Path(os.environ["E2E_DONE"])
deadline = time.monotonic() + 90
while not done.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
queue.shutdown()
"""
)


@pytest.mark.parametrize("transport", ["kafka", "rabbitmq"])
def test_v025_queue_over_a_broker(
    transport: str, request: pytest.FixtureRequest, fresh_database_dsn: str, tmp_path: Path
) -> None:
    """40 SPC samples of 3 features, one PSI batch and 4 custom batches of the 0.25 queue, stored once under the
    entities of their uids, nothing quarantined."""
    space = f"e2e25_{transport}_{secrets.token_hex(3)}"
    name = f"scouter_e2e25_{secrets.token_hex(4)}"
    server_extra, client_env = broker_settings(request, transport, name)
    done = tmp_path / "done"
    dsn = fresh_database_dsn

    def stored() -> tuple[int, int, int]:
        counts = [
            query(dsn, f"SELECT count(*) FROM scouter.{table} WHERE space = $1", space)[0][0]
            for table in ("spc_drift", "psi_drift", "custom_drift")
        ]
        return counts[0], counts[1], counts[2]

    with running_server(dsn, **server_extra) as server, ThreadPoolExecutor(1) as pool:
        env = {**server.client_env(), **client_env, "E2E_SPACE": space, "E2E_TRANSPORT": transport,
               "E2E_DONE": str(done)}  # fmt: skip
        client = pool.submit(run_client, BROKER_SCRIPT, env, 240, python=CLIENT_V025_PYTHON)
        try:
            wait_until(lambda: stored() == (120, 30, 4) or client.done(), 150, "every record", server)
        finally:
            done.touch()
        result = client.result()
        assert 0 == result.returncode, f"{result.stderr[-3000:]}\nserver log:\n{server.log()[-4000:]}"
    report = _report(result.stdout)
    assert (120, 30, 4) == stored()
    assert [] == query(dsn, "SELECT source, reason FROM scouter.quarantine")
    versions = {
        (r["drift_type"], r["version"])
        for r in query(dsn, "SELECT drift_type, version FROM scouter.drift_profile WHERE space = $1", space)
    }
    assert {("Spc", "1.0.0"), ("Psi", "0.1.0"), ("Custom", "2.1.0")} == versions
    means = query(dsn, "SELECT feature, avg(value) AS mean FROM scouter.spc_drift WHERE space = $1 GROUP BY 1", space)
    for row in means:
        assert _close(report["expected"]["spc"][row["feature"]], row["mean"])
    psi_total = query(dsn, "SELECT sum(bin_count) FROM scouter.psi_drift WHERE space = $1", space)[0][0]
    assert 3000 == psi_total
