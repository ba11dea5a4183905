"""The real scouter-ml 0.6.4 client over HTTP against the real server: profiles, queue ingest, binned reads back.

One client script (run with the client's own venv) logs in, registers SPC, PSI and custom profiles with
`set_active=True`, sends records with `ScouterQueue` over `HTTPConfig`, waits until the server shows all of them
(client.md §4.1: shutdown may drop pending inserts), reads the binned drift back and compares every number with
values it computes itself from the raw data, then downloads a profile and compares it with the registered one.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import LiveServer, run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

SCRIPT = r"""
import json, math, tempfile, time
from pathlib import Path

import numpy as np
from scouter import (CustomMetric, CustomMetricDriftConfig, Drifter, Feature, Features, Metric, Metrics,
                     PsiDriftConfig, ScouterQueue, SpcDriftConfig)
from scouter.alert import AlertThreshold, CustomMetricAlertConfig, PsiAlertConfig, SpcAlertConfig
from scouter.client import DriftRequest, GetProfileRequest, HTTPConfig, ScouterClient, TimeInterval
from scouter.types import DriftType

SPACE, NAME, VERSION = "e2e", "model", "1.0.0"
ROWS, SAMPLE = 1000, 25                      # 1000 rows: one PSI batch, 40 SPC samples per feature
MAE = [0.5 + 0.01 * i for i in range(20)]    # 4 custom batches of 5

rng = np.random.default_rng(11)
baseline = rng.normal(size=(2000, 3))
drifter = Drifter()
spc = drifter.create_drift_profile(baseline, SpcDriftConfig(
    space=SPACE, name=NAME, version=VERSION, sample_size=SAMPLE, alert_config=SpcAlertConfig(schedule="0 0 0 * * *")))
psi = drifter.create_drift_profile(baseline, PsiDriftConfig(
    space=SPACE, name=NAME, version=VERSION, alert_config=PsiAlertConfig(schedule="0 0 0 * * *")))
custom = drifter.create_drift_profile(
    [CustomMetric("mae", 1.0, AlertThreshold.Above, 0.5)],
    CustomMetricDriftConfig(space=SPACE, name=NAME, version=VERSION, sample_size=5,
                            alert_config=CustomMetricAlertConfig(schedule="0 0 0 * * *")))

client = ScouterClient(HTTPConfig())
for profile in (spc, psi, custom):
    assert client.register_profile(profile, set_active=True)

# Every record of this run must land in one 5-minute bucket (FiveMinutes / max_data_points=1 below).
second_of_bucket = time.time() % 300
if second_of_bucket > 280:  # the sends below take a few seconds
    time.sleep(301 - second_of_bucket)

scratch = Path(tempfile.mkdtemp())
paths = {}
for alias, profile in (("spc", spc), ("psi", psi), ("custom", custom)):
    paths[alias] = scratch / f"{alias}.json"
    profile.save_to_json(paths[alias])
queue = ScouterQueue.from_path(paths, HTTPConfig())

data = rng.normal(loc=0.3, size=(ROWS, 3))
for row in data:
    features = Features([Feature.float(f"feature_{i}", float(v)) for i, v in enumerate(row)])
    queue["spc"].insert(features)
    queue["psi"].insert(features)
for value in MAE:
    queue["custom"].insert(Metrics([Metric("mae", value)]))

# What the server must answer, computed here from the raw data.
expected_spc = {f"feature_{i}": float(np.mean([np.mean(data[k:k + SAMPLE, i]) for k in range(0, ROWS, SAMPLE)]))
                for i in range(3)}
batch_means = [float(np.mean(MAE[k:k + 5])) for k in range(0, len(MAE), 5)]
expected_mae = (float(np.mean(batch_means)), float(np.std(batch_means, ddof=1)))
psi_doc = json.loads(psi.model_dump_json())

def limit(x):
    return float(x)  # "-inf" and "inf" parse as floats

expected_bins, expected_psi = {}, {}
for i in range(3):
    bins = psi_doc["features"][f"feature_{i}"]["bins"]
    counts = {b["id"]: 0 for b in bins}
    for v in data[:, i]:
        for b in bins:
            if limit(b["lower_limit"]) < v <= limit(b["upper_limit"]):
                counts[b["id"]] += 1
                break
    q = {k: c / ROWS for k, c in counts.items()}
    eps = 1e-10
    expected_bins[f"feature_{i}"] = q
    expected_psi[f"feature_{i}"] = sum(((b["proportion"] + eps) - (q[b["id"]] + eps))
                                       * math.log((b["proportion"] + eps) / (q[b["id"]] + eps)) for b in bins)

def request(drift_type):
    return DriftRequest(name=NAME, space=SPACE, version=VERSION, time_interval=TimeInterval.FiveMinutes,
                        max_data_points=1, drift_type=drift_type)

def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)

def read_back():
    spc_bins = client.get_binned_drift(request(DriftType.Spc))
    psi_bins = client.get_binned_drift(request(DriftType.Psi))
    custom_bins = client.get_binned_drift(request(DriftType.Custom))
    result = {
        "spc": {f: (len(m.values), m.values[0] if m.values else None, [d.tzinfo is not None for d in m.created_at])
                for f, m in spc_bins.features.items()},
        "psi": {f: (list(m.psi), m.overall_psi, {int(k): v for k, v in m.bins.items()})
                for f, m in psi_bins.features.items()},
        "custom": {m: [(s.avg, s.lower_bound, s.upper_bound) for s in v.stats] for m, v in custom_bins.metrics.items()},
    }
    done = (
        set(result["spc"]) == set(expected_spc)
        and all(n == 1 and close(v, expected_spc[f]) for f, (n, v, _) in result["spc"].items())
        and set(result["psi"]) == set(expected_psi)
        and all(len(p) == 1 for p, _, _ in result["psi"].values())
        and all(close(b[k], expected_bins[f][k]) for f, (_, _, b) in result["psi"].items() for k in expected_bins[f])
        and len(result["custom"].get("mae", [])) == 1
        and close(result["custom"]["mae"][0][0], expected_mae[0])
    )
    return done, result

started = time.monotonic()
deadline = started + 60
done, result = read_back()
while not done and time.monotonic() < deadline:
    time.sleep(0.25)
    done, result = read_back()
queue.shutdown()

wanted = GetProfileRequest(name=NAME, space=SPACE, version=VERSION, drift_type=DriftType.Psi)
downloaded = Path(client.download_profile(wanted, scratch / "psi_download.json"))
print(json.dumps({
    "done": done,
    "waited": time.monotonic() - started,
    "result": result,
    "expected": {"spc": expected_spc, "psi": expected_psi, "bins": expected_bins, "mae": expected_mae},
    "downloaded": json.loads(downloaded.read_text()),
    "registered": psi_doc,
}))
"""


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12


def _same_json(reference: object, ours: object, path: str = "") -> None:
    """Equal documents, floats compared with a relative tolerance (client.md §6.3)."""
    if isinstance(reference, dict):
        assert isinstance(ours, dict), path
        assert set(reference) == set(ours), path
        for key in reference:
            _same_json(reference[key], ours[key], f"{path}.{key}")
    elif isinstance(reference, list):
        assert isinstance(ours, list), path
        assert len(reference) == len(ours), path
        for i, (a, b) in enumerate(zip(reference, ours, strict=True)):
            _same_json(a, b, f"{path}[{i}]")
    elif isinstance(reference, float) and not isinstance(reference, bool):
        assert isinstance(ours, int | float), path
        assert _close(reference, float(ours)), (path, reference, ours)
    else:
        assert reference == ours, path


def test_client_http_path_round_trip(live_server: LiveServer) -> None:
    """Profiles registered and activated, records sent by the HTTP queue, binned drift read back with the values
    the client computes itself (one 5-minute bucket: real widths), and the PSI profile downloaded unchanged."""
    result = run_client(SCRIPT, live_server.client_env(), timeout=180)
    assert 0 == result.returncode, f"{result.stderr}\nserver log:\n{live_server.log()[-4000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    ours, expected = report["result"], report["expected"]
    assert report["done"], json.dumps(report, indent=1)[:4000]

    assert set(expected["spc"]) == set(ours["spc"])
    for feature, (points, value, aware) in ours["spc"].items():
        assert (1, [True]) == (points, aware)
        assert _close(expected["spc"][feature], value), (feature, expected["spc"][feature], value)

    assert set(expected["psi"]) == set(ours["psi"])
    for feature, (psi, overall, bins) in ours["psi"].items():
        assert 1 == len(psi)
        assert _close(expected["psi"][feature], psi[0])
        assert _close(expected["psi"][feature], overall)
        for bin_id, proportion in expected["bins"][feature].items():
            assert _close(proportion, bins[bin_id]), (feature, bin_id)

    ((avg, lower, upper),) = ours["custom"]["mae"]
    mean, sd = expected["mae"]
    assert _close(mean, avg)
    assert _close(mean - sd, lower)
    assert _close(mean + sd, upper)

    # download_profile writes the tagged body verbatim; "-inf"/"inf" limits survive as strings
    assert ["Psi"] == list(report["downloaded"])
    _same_json(report["registered"], report["downloaded"]["Psi"])
    first_bins = report["downloaded"]["Psi"]["features"]["feature_0"]["bins"]
    assert ("-inf", "inf") == (first_bins[0]["lower_limit"], first_bins[-1]["upper_limit"])
