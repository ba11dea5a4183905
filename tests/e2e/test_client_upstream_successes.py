"""Calls upstream answers with success, made by the real 0.6.4 client: they succeed here too."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LiveServer, run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SCRIPT = r"""
from scouter.client import DriftRequest, HTTPConfig, ProfileStatusRequest, ScouterClient, TimeInterval
from scouter.types import DriftType

client = ScouterClient(HTTPConfig())
missing = ProfileStatusRequest(name="nobody", space="nowhere", version="9.9.9", drift_type=DriftType.Spc, active=False)
assert client.update_profile_status(missing) is True
for points in (0, -1):
    request = DriftRequest(name="nobody", space="nowhere", version="9.9.9", time_interval=TimeInterval.OneHour,
                           max_data_points=points, drift_type=DriftType.Spc)
    client.get_binned_drift(request)  # raised 'Failed to get drift data' on a 400
print("ok")
"""


def test_client_status_of_a_missing_profile_and_zero_points_succeed(live_server: LiveServer) -> None:
    """update_profile_status for a profile that does not exist returns True (upstream's 200; clean-up scripts rely
    on it) and is logged; get_binned_drift with max_data_points 0 or -1 returns (clamped to one bucket)."""
    result = run_client(SCRIPT, live_server.client_env())
    assert 0 == result.returncode, result.stderr
    assert "ok" == result.stdout.strip().splitlines()[-1]
    assert "no drift profile nowhere/nobody/9.9.9 of type Spc" in live_server.log()
