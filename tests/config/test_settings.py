"""Settings from the environment: upstream names and defaults, strict parsing, every problem reported."""

from __future__ import annotations

import pytest

from config import DEFAULT_SECRET, ConfigError, describe, load_settings


def test_defaults_match_upstream() -> None:
    """With an empty environment every default is upstream's (spec §9) and the brokers are off."""
    settings = load_settings({})
    assert 8000 == settings.http.port
    assert 8001 == settings.http.effective_metrics_port
    assert 30 == settings.database.max_pool_size
    assert 30 == settings.database.retention_days
    assert 4 == settings.polling_workers
    assert DEFAULT_SECRET == settings.auth.encrypt_secret == settings.auth.refresh_secret
    assert ("admin", "admin") == (settings.auth.default_username, settings.auth.default_password)
    assert "./scouter_storage" == settings.storage.uri
    assert settings.kafka is None
    assert settings.rabbitmq is None


def test_transports_turn_on_with_their_address() -> None:
    """KAFKA_BROKERS and RABBITMQ_ADDR enable their sections; topics split on commas."""
    settings = load_settings({"KAFKA_BROKERS": "k:9092", "KAFKA_TOPIC": "a, b,,c", "RABBITMQ_ADDR": "amqp://h/%2f"})
    assert settings.kafka is not None
    assert settings.rabbitmq is not None
    assert ("a", "b", "c") == settings.kafka.topics
    assert 3 == settings.kafka.workers
    assert "earliest" == settings.kafka.offset_reset
    assert "amqp://h/%2f" == settings.rabbitmq.addr
    assert 10 == settings.rabbitmq.prefetch


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("off", False)]
)
def test_booleans_parse_their_text(text: str, expected: bool) -> None:
    """ "false" is False: booleans are parsed, not truth-tested."""
    assert expected == load_settings({"LOG_JSON": text}).log.json


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"POLLING_WORKER_COUNT": "abc"}, "POLLING_WORKER_COUNT='abc': expected a whole number"),
        ({"POLLING_WORKER_COUNT": "-1"}, "POLLING_WORKER_COUNT='-1': must be >= 0"),
        ({"MAX_POOL_SIZE": "0"}, "MAX_POOL_SIZE='0': must be >= 1"),
        ({"SCOUTER_SERVER_PORT": "70000"}, "SCOUTER_SERVER_PORT='70000': must be between"),
        ({"SCOUTER_STORAGE_URI": "ftp://bucket"}, "SCOUTER_STORAGE_URI='ftp://bucket': unknown URI scheme 'ftp'"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud': must be one of"),
        ({"LOG_JSON": "maybe"}, "LOG_JSON='maybe': expected true or false"),
        ({"KAFKA_BROKERS": "k", "KAFKA_WORKER_COUNT": "0"}, "KAFKA_WORKER_COUNT='0': must be >= 1"),
        ({"RABBITMQ_ADDR": "http://x"}, "RABBITMQ_ADDR='***': unknown URI scheme 'http'"),
        ({"DATA_RETENTION_PERIOD": "1.5"}, "DATA_RETENTION_PERIOD='1.5': expected a whole number"),
        ({"MIN_POOL_SIZE": "10", "MAX_POOL_SIZE": "5"}, "MIN_POOL_SIZE must not exceed MAX_POOL_SIZE"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    """Every invalid value is reported with its variable name and value."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    """Three bad variables give three lines, and secrets never show their value."""
    with pytest.raises(ConfigError) as info:
        load_settings({"POLLING_WORKER_COUNT": "x", "MAX_POOL_SIZE": "y", "DATABASE_URI": "mysql://u:pw@h/d"})
    assert 3 == len(info.value.problems)
    assert "pw" not in str(info.value)


def test_empty_optional_counts_as_unset() -> None:
    """An empty optional variable (KAFKA_USERNAME=) means unset, not an empty user."""
    settings = load_settings({"KAFKA_BROKERS": "k", "KAFKA_USERNAME": ""})
    assert settings.kafka is not None
    assert settings.kafka.username is None


def test_describe_masks_secrets() -> None:
    """describe() lists every variable with secrets masked."""
    rows = {name: value for name, value, _ in describe(load_settings({"SCOUTER_ENCRYPT_SECRET": "topsecret"}))}
    assert "'***'" == rows["SCOUTER_ENCRYPT_SECRET"]
    assert "8000" == rows["SCOUTER_SERVER_PORT"]
    assert "(unset: off)" == rows["KAFKA_BROKERS"]


def test_repr_never_shows_secrets() -> None:
    """A settings object printed in a log or traceback does not reveal secret values."""
    settings = load_settings({"SCOUTER_ENCRYPT_SECRET": "s3cret-in-repr", "SLACK_APP_TOKEN": "xoxb-hidden"})
    assert "s3cret-in-repr" not in repr(settings)
    assert "xoxb-hidden" not in repr(settings)
