"""Schemathesis against the real server: every documented operation, fuzzed from the OpenAPI document the server
itself serves, must never answer 5xx and must answer only documented statuses with bodies matching their schemas.

It runs through schemathesis's Python API (a Hypothesis strategy per operation and generation mode), authenticated
as admin, with a bounded number of examples so the whole run stays around a minute. Hypothesis is derandomized: the
run is the same every time (set SCOUTER_FUZZ_EXAMPLES and SCOUTER_FUZZ_SEED to explore further by hand). The
profile and records the schema's examples name (space ``cap``, model ``model``, version ``1.0.0``) are registered
first, so examples reach the success paths too, not only the "not found" ones.
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.drift_profiles import custom_profile, psi_profile, spc_profile
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES = int(os.environ.get("SCOUTER_FUZZ_EXAMPLES", "50"))
SEED = os.environ.get("SCOUTER_FUZZ_SEED")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SPACE, NAME, VERSION = "cap", "model", "1.0.0"


def _login(url: str) -> dict[str, str]:
    response = httpx.get(f"{url}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
    assert 200 == response.status_code, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _seed(url: str, auth: dict[str, str]) -> None:
    """The profiles and a few records of each kind that the schema's examples name."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    profiles = {
        "Spc": spc_profile({"feature_0": (0.0, 1.0)}),
        "Psi": psi_profile({"feature_0": [0.25, 0.25, 0.25, 0.25]}),
        "Custom": custom_profile({"mae": 1.0}, {"mae": ("Above", 0.5)}),
    }
    for kind, profile in profiles.items():
        body = {"space": SPACE, "drift_type": kind, "profile": json.dumps(profile)}
        response = httpx.post(f"{url}/scouter/profile", json=body, headers=auth)
        assert 200 == response.status_code, response.text
    entity = {"space": SPACE, "name": NAME, "version": VERSION, "created_at": stamp}
    records = [
        *({"Spc": {**entity, "feature": "feature_0", "value": 0.1 * i}} for i in range(5)),
        *({"Psi": {**entity, "feature": "feature_0", "bin_id": i, "bin_count": 30}} for i in range(1, 5)),
        *({"Custom": {**entity, "metric": "mae", "value": 1.0 + i}} for i in range(3)),
    ]
    response = httpx.post(f"{url}/scouter/drift", json={"records": records}, headers=auth)
    assert 200 == response.status_code, response.text


def test_fuzzed_operations_answer_only_documented_shapes_and_never_5xx(live_server: LiveServer) -> None:
    """Fuzzed requests to every documented operation get no 5xx, no undocumented status, no body off its schema."""
    auth = _login(live_server.url)
    cookie = {"access_token": auth["Authorization"].removeprefix("Bearer ")}
    _seed(live_server.url, auth)
    document = httpx.get(f"{live_server.url}/scouter/docs/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)

    failures: list[str] = []
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())
    for operation in operations:
        # The token goes in the cookie too: the server reads the cookie first, and the document names it as an
        # alternative to the header, so schemathesis would otherwise send a made-up one.
        strategies = [("examples", strategy) for strategy in schema.get_strategies_from_examples(operation)]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=auth, cookies=cookie)
            strategies.append((mode.value, strategy))
        for name, strategy in strategies:
            failure = _run(strategy, live_server.url, auth, cookie, statuses[operation.label])
            if failure is not None:
                failures.append(f"{operation.label} ({name}):\n{failure}")

    summary = "\n".join(f"{label}: {dict(sorted(counts.items()))}" for label, counts in sorted(statuses.items()))
    print(summary)
    assert [] == failures, "\n\n".join(failures) + f"\n\nstatuses seen:\n{summary}"
    # the run did not lock itself out (a fuzzed user update could deactivate the caller): the token still works
    assert 200 == httpx.get(f"{live_server.url}/scouter/user/admin", headers=auth).status_code
    # and it reached the success paths, not only the rejections
    answered = {label for label, counts in statuses.items() if any(200 <= status < 300 for status in counts)}
    assert len(answered) >= len(statuses) * 2 // 3, summary


def _run(
    strategy: Any, url: str, auth: dict[str, str], cookie: dict[str, str], seen: collections.Counter[int]
) -> str | None:
    """Run `strategy`'s cases against the server; the first failure (shrunk), or None."""

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=url, headers=auth, cookies=cookie, checks=CHECKS, timeout=30)
        seen[response.status_code] += 1

    if SEED is not None:
        run = seed(int(SEED))(run)
    try:
        run()
    except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body, in negative mode
        return None
    except (Exception, BaseExceptionGroup) as exc:  # every failure is collected and reported together
        return f"{type(exc).__name__}: {exc}"
    return None
