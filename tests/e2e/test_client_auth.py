"""The real scouter-ml 0.6.4 client logs in to the real server with its default credentials (§2.3, client §2)."""

from __future__ import annotations

import httpx
import pytest

from config import DEFAULT_SECRET
from tests.e2e.conftest import LiveServer, run_client

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

#: Registers a custom-metric profile in space SPACE through a client built by CLIENT; prints the outcome.
REGISTER = """
from scouter import CustomMetric, CustomMetricDriftConfig, Drifter
from scouter.alert import AlertThreshold
from scouter.client import HTTPConfig, ScouterClient
profile = Drifter().create_drift_profile(
    [CustomMetric("mae", 1.0, AlertThreshold.Above, 0.5)],
    CustomMetricDriftConfig(space=SPACE, name=NAME, version="1.0.0"),
)
client = CLIENT
try:
    print(client.register_profile(profile))
except RuntimeError as exc:
    print(exc)
"""


def register_with(client: str, space: str, name: str) -> str:
    return f"SPACE, NAME = {space!r}, {name!r}\n" + REGISTER.replace("CLIENT", client)


def test_default_configs_log_in_as_admin_and_guest(live_server: LiveServer) -> None:
    """`ScouterClient(HTTPConfig())` logs in as admin/admin and a bare `ScouterClient()` as guest/guest: the client
    logs in at construction and raises on any failure, so constructing both is the check."""
    script = """
from scouter.client import HTTPConfig, ScouterClient
ScouterClient(HTTPConfig())
ScouterClient()
print("both logged in")
"""
    result = run_client(script, live_server.client_env())
    assert 0 == result.returncode, result.stderr
    assert "both logged in" == result.stdout.strip()
    log = live_server.log()
    assert "'admin' logged in" in log
    assert "'guest' logged in" in log


def test_wrong_credentials_raise_unauthorized(live_server: LiveServer) -> None:
    """A wrong password (argument or SCOUTER_PASSWORD) and an unknown user: RuntimeError("Unauthorized")."""
    script = """
from scouter.client import HTTPConfig, ScouterClient
for config in (HTTPConfig(password="wrong"), HTTPConfig(username="nobody", password="x"), None):
    try:
        ScouterClient(config) if config is not None else ScouterClient()
    except RuntimeError as exc:
        print(exc)
    else:
        print("logged in")
"""
    result = run_client(script, live_server.client_env(SCOUTER_PASSWORD="also-wrong"))
    assert 0 == result.returncode, result.stderr
    assert ["Unauthorized", "Unauthorized", "Unauthorized"] == result.stdout.split()
    assert "also-wrong" not in live_server.log()


@pytest.mark.parametrize(
    ("client", "user"),
    [("ScouterClient(HTTPConfig())", "admin"), ("ScouterClient()", "guest")],
)
def test_default_logins_make_authenticated_calls(live_server: LiveServer, client: str, user: str) -> None:
    """With either default login the client's token is accepted: registering a profile succeeds."""
    result = run_client(register_with(client, "auth-e2e", f"model-{user}"), live_server.client_env())
    assert 0 == result.returncode, result.stderr
    assert "True" == result.stdout.strip()
    assert f"{user!r} logged in" in live_server.log()


def test_permissions_are_enforced_for_the_client(live_server: LiveServer) -> None:
    """A user allowed to write only space `mine` registers there; elsewhere the client gets its failure error."""
    created = httpx.post(
        f"{live_server.url}/scouter/user",
        json={"username": "writer", "password": "writer-pw", "email": "w@x", "permissions": ["write:mine"]},
        headers={"x-bootstrap-token": DEFAULT_SECRET},  # the server runs with the built-in bootstrap key
    )
    assert 200 == created.status_code, created.text
    client = 'ScouterClient(HTTPConfig(username="writer", password="writer-pw"))'
    allowed = run_client(register_with(client, "mine", "m"), live_server.client_env())
    denied = run_client(register_with(client, "theirs", "m"), live_server.client_env())
    assert ("True", "Failed to insert profile") == (allowed.stdout.strip(), denied.stdout.strip()), (
        allowed.stderr + denied.stderr
    )
