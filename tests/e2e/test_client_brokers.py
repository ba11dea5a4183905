"""The real scouter-ml 0.6.4 client sends through its Kafka queue and its RabbitMQ queue to the real server.

The client script inserts SPC rows and custom metrics, prints the sample means it expects the server to store, and
keeps its queue open until the test has seen every record in the database (client.md §4.1: shutdown may drop
pending inserts). Unlike client.md §1.1 says, `RabbitMQConfig()` of 0.6.4 ignores RABBITMQ_QUEUE: the script passes
the queue name, so that tests never share the default queue of a broker other runs may use.
"""

from __future__ import annotations

import json
import math
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.brokers import broker_settings, query, running_server, wait_until
from tests.e2e.conftest import run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

SCRIPT = r"""
import json, os, tempfile, time
from pathlib import Path

import numpy as np
from scouter import (CustomMetric, CustomMetricDriftConfig, Drifter, Feature, Features, KafkaConfig, Metric,
                     Metrics, RabbitMQConfig, ScouterQueue, SpcDriftConfig)
from scouter.alert import AlertThreshold, CustomMetricAlertConfig, SpcAlertConfig

SPACE, NAME, VERSION = os.environ["E2E_SPACE"], "model", "1.0.0"
if os.environ["E2E_TRANSPORT"] == "kafka":
    transport = KafkaConfig()  # KAFKA_BROKERS, KAFKA_TOPIC
else:
    # RABBITMQ_ADDR is read from the environment, but 0.6.4 ignores RABBITMQ_QUEUE (always scouter_monitoring)
    transport = RabbitMQConfig(queue=os.environ["RABBITMQ_QUEUE"])
rng = np.random.default_rng(5)
drifter = Drifter()
spc = drifter.create_drift_profile(rng.normal(size=(500, 3)), SpcDriftConfig(
    space=SPACE, name=NAME, version=VERSION, sample_size=25, alert_config=SpcAlertConfig(schedule="0 0 0 * * *")))
custom = drifter.create_drift_profile(
    [CustomMetric("mae", 1.0, AlertThreshold.Above, 0.5)],
    CustomMetricDriftConfig(space=SPACE, name=NAME, version=VERSION, sample_size=5,
                            alert_config=CustomMetricAlertConfig(schedule="0 0 0 * * *")))
scratch = Path(tempfile.mkdtemp())
paths = {}
for alias, profile in (("spc", spc), ("custom", custom)):
    paths[alias] = scratch / f"{alias}.json"
    profile.save_to_json(paths[alias])
queue = ScouterQueue.from_path(paths, transport)

data = rng.normal(loc=0.2, size=(250, 3))
for row in data:
    queue["spc"].insert(Features([Feature.float(f"feature_{i}", float(v)) for i, v in enumerate(row)]))
mae = [0.5 + 0.01 * k for k in range(20)]
for value in mae:
    queue["custom"].insert(Metrics([Metric("mae", value)]))
print(json.dumps({
    "spc": sorted((f"feature_{i}", float(np.mean(data[k:k + 25, i]))) for k in range(0, 250, 25) for i in range(3)),
    "custom": sorted(float(np.mean(mae[k:k + 5])) for k in range(0, 20, 5)),
}), flush=True)

done = Path(os.environ["E2E_DONE"])
deadline = time.monotonic() + 90
while not done.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
queue.shutdown()
"""


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("transport", ["kafka", "rabbitmq"])
def test_client_queue_over_a_broker(
    transport: str, request: pytest.FixtureRequest, fresh_database_dsn: str, tmp_path: Path
) -> None:
    """10 SPC samples (3 features) and 4 custom batches sent by the client's broker queue are stored exactly once,
    with the means the client computed, and the broker's bookkeeping shows they came that way."""
    space = f"e2e_{transport}_{secrets.token_hex(3)}"
    name = f"scouter_e2e_{secrets.token_hex(4)}"
    server_extra, client_env = broker_settings(request, transport, name)
    done = tmp_path / "done"
    dsn = fresh_database_dsn

    def stored() -> tuple[int, int]:
        spc = query(dsn, "SELECT count(*) FROM scouter.spc_drift WHERE space = $1", space)[0][0]
        custom = query(dsn, "SELECT count(*) FROM scouter.custom_drift WHERE space = $1", space)[0][0]
        return spc, custom

    with running_server(dsn, **server_extra) as server, ThreadPoolExecutor(1) as pool:
        env = {
            **server.client_env(),
            **client_env,
            "E2E_SPACE": space,
            "E2E_TRANSPORT": transport,
            "E2E_DONE": str(done),
        }
        client = pool.submit(run_client, SCRIPT, env, 180)
        try:
            wait_until(lambda: stored() == (30, 4) or client.done(), 120, "30 SPC and 4 custom rows", server)
        finally:
            done.touch()
        result = client.result()
        assert 0 == result.returncode, f"{result.stderr}\nserver log:\n{server.log()[-4000:]}"
    expected = json.loads(result.stdout.strip().splitlines()[-1])
    assert (30, 4) == stored()

    spc = sorted(
        (r["feature"], r["value"])
        for r in query(dsn, "SELECT feature, value FROM scouter.spc_drift WHERE space = $1", space)
    )
    assert [f for f, _ in expected["spc"]] == [f for f, _ in spc]
    assert all(_close(a, b) for (_, a), (_, b) in zip(expected["spc"], spc, strict=True)), (expected["spc"], spc)
    custom = sorted(r["value"] for r in query(dsn, "SELECT value FROM scouter.custom_drift WHERE space = $1", space))
    assert all(_close(a, b) for a, b in zip(expected["custom"], custom, strict=True)), (expected["custom"], custom)

    assert [] == query(dsn, "SELECT source, reason FROM scouter.quarantine")
    if transport == "kafka":
        offsets = query(dsn, "SELECT sum(next_offset) FROM scouter.consumer_offsets WHERE topic = $1", name)
        assert 14 == offsets[0][0]  # 10 SPC messages + 4 custom messages
    else:
        digests = query(dsn, "SELECT count(*) FROM scouter.ingested_messages WHERE source = 'rabbitmq'")
        assert 14 == digests[0][0]
