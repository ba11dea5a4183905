"""The real scouter-ml 0.6.4 client sees the alert for planted drift: an SPC profile checked every 5 s, records far
beyond feature_0's upper control limit sent through the HTTP queue, ``get_alerts`` polled until the alert appears,
then ``PUT /scouter/alerts`` (a direct HTTP call: the client has no method for it) takes it out of the active ones.
The server's log shows the alert's message sent to the Console channel."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import LiveServer, run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

SCRIPT = r"""
import json, os, tempfile, time, urllib.request
from pathlib import Path

import numpy as np
from scouter import Drifter, Feature, Features, ScouterQueue, SpcDriftConfig
from scouter.alert import SpcAlertConfig
from scouter.client import DriftAlertRequest, HTTPConfig, ScouterClient

SPACE, NAME, VERSION = "alerts", "model", "1.0.0"
SERVER = os.environ["SCOUTER_SERVER_URI"]

rng = np.random.default_rng(5)
baseline = rng.normal(size=(2000, 2))
profile = Drifter().create_drift_profile(baseline, SpcDriftConfig(
    space=SPACE, name=NAME, version=VERSION, sample_size=10,
    alert_config=SpcAlertConfig(schedule="*/5 * * * * *")))
doc = json.loads(profile.model_dump_json())
three_ucl = doc["features"]["feature_0"]["three_ucl"]

client = ScouterClient(HTTPConfig())
assert client.register_profile(profile, set_active=True)
path = Path(tempfile.mkdtemp()) / "spc.json"
profile.save_to_json(path)
queue = ScouterQueue.from_path({"spc": path}, HTTPConfig())

planted = three_ucl + 100.0
for _ in range(50):  # 5 samples of 10 rows: every feature_0 mean is far beyond three_ucl
    queue["spc"].insert(Features([Feature.float("feature_0", planted), Feature.float("feature_1", 0.0)]))

def active_alerts():
    return client.get_alerts(DriftAlertRequest(name=NAME, space=SPACE, version=VERSION, active=True))

def describe(alert):
    return {"id": alert.id, "created_at": alert.created_at.isoformat(), "aware": alert.created_at.tzinfo is not None,
            "name": alert.name, "space": alert.space, "version": alert.version, "entity_name": alert.entity_name,
            "alert": dict(alert.alert), "drift_type": str(alert.drift_type), "active": alert.active}

started = time.monotonic()
found = []
while time.monotonic() - started < 40:
    found = [a for a in active_alerts() if a.entity_name == "feature_0"]
    if found:
        break
    time.sleep(0.5)
waited = time.monotonic() - started
queue.shutdown()
assert found, "no alert within 40 s"
alert = found[0]

login = urllib.request.Request(f"{SERVER}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
token = json.loads(urllib.request.urlopen(login).read())["token"]
put = urllib.request.Request(
    f"{SERVER}/scouter/alerts", method="PUT",
    data=json.dumps({"id": alert.id, "active": False, "space": SPACE}).encode(),
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
updated = json.loads(urllib.request.urlopen(put).read())

print(json.dumps({
    "waited": waited,
    "three_ucl": three_ucl,
    "alert": describe(alert),
    "updated": updated,
    "active_after": [a.id for a in active_alerts()],
    "all_after": [describe(a) for a in client.get_alerts(DriftAlertRequest(name=NAME, space=SPACE, version=VERSION))],
}))
"""


def test_client_gets_the_alert_for_planted_drift(live_server: LiveServer) -> None:
    """Planted drift becomes a Zone 4 "Out of bounds" alert on feature_0 within ~30 s; PUT active=false removes it
    from active=True and keeps it in the default (all) listing; its message was sent to the Console channel."""
    result = run_client(SCRIPT, live_server.client_env(), timeout=180)
    assert 0 == result.returncode, f"{result.stderr}\nserver log:\n{live_server.log()[-4000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    alert = report["alert"]

    assert report["waited"] < 35, report
    assert ("alerts", "model", "1.0.0", "feature_0") == (
        alert["space"],
        alert["name"],
        alert["version"],
        alert["entity_name"],
    )
    assert {"zone": "Zone 4", "kind": "Out of bounds", "entity_name": "feature_0"} == alert["alert"]
    assert "Spc" in alert["drift_type"]
    assert alert["active"]
    assert alert["aware"]
    assert {"updated": True} == report["updated"]
    assert alert["id"] not in report["active_after"]
    (after,) = [a for a in report["all_after"] if a["id"] == alert["id"]]
    assert not after["active"]
    log = live_server.log()
    assert f"scouter-alert-{alert['id']}" in log
    assert "on console: sent (attempt 1)" in log
