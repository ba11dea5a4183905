"""Our additions to the Kafka settings: session timeout, heartbeat and batch size, checked together."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings


def test_kafka_group_timing_defaults_follow_upstream() -> None:
    """Upstream's session.timeout.ms=6000; a heartbeat a third of it; 1,000 messages per batch."""
    kafka = load_settings({"KAFKA_BROKERS": "k:9092"}).kafka
    assert kafka is not None
    assert (6000, 2000, 1000) == (kafka.session_timeout_ms, kafka.heartbeat_interval_ms, kafka.max_batch)


def test_kafka_group_timing_from_the_environment() -> None:
    """KAFKA_SESSION_TIMEOUT_MS, KAFKA_HEARTBEAT_INTERVAL_MS and KAFKA_MAX_BATCH are read."""
    env = {"KAFKA_BROKERS": "k", "KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
    kafka = load_settings({**env, "KAFKA_MAX_BATCH": "50"}).kafka
    assert kafka is not None
    assert (3000, 500, 50) == (kafka.session_timeout_ms, kafka.heartbeat_interval_ms, kafka.max_batch)


def test_heartbeat_must_be_below_the_session_timeout() -> None:
    """A heartbeat as long as the session would let the group expire members that are alive."""
    env = {"KAFKA_BROKERS": "k", "KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "3000"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert ["KAFKA_HEARTBEAT_INTERVAL_MS must be below KAFKA_SESSION_TIMEOUT_MS"] == caught.value.problems
