"""The captured upstream traffic the tests replay lives inside the repository, so a clone alone runs them."""

from __future__ import annotations

from pathlib import Path

from tests.captures import CAPTURES, broker_messages, http_session

TESTS = Path(__file__).resolve().parent


def test_no_test_reads_captures_from_outside_the_repository() -> None:
    outside = [
        f"{path.relative_to(TESTS)}: {line.strip()}"
        for path in TESTS.rglob("*.py")
        for line in path.read_text().splitlines()
        if "shared/spec" in line and path != Path(__file__).resolve()
    ]
    assert outside == []


def test_the_captures_in_the_repository_hold_the_client_session_and_broker_messages() -> None:
    assert CAPTURES.is_relative_to(TESTS)
    drift_posts = [line for line in http_session() if line.get("path") == "/scouter/drift"]
    assert drift_posts, "no POST /scouter/drift in the captured session"
    assert broker_messages("kafka")
    assert broker_messages("rabbitmq")
