"""deploy/docker-compose.yml: valid against the Compose specification and consistent with the server's settings."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from .repo import COMPOSE, DEPLOY, ROOT, compose, server_environment, server_settings, setting_names

STACK = {"server", "postgres", "rabbitmq", "kafka", "prometheus", "grafana"}


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema as vendored by the check-jsonschema wheel (no download)."""
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(document)]


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    """depends_on in either form, as {service: condition}."""
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """Published ports as {container port: host port} (short syntax "host:container")."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        ports[int(container.split("/")[0])] = int(host)
    return ports


def seconds(duration: str) -> float:
    """A Compose duration ("75s", "1m30s") in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert duration, "empty duration"
    assert parts is not None, duration
    hours, minutes, secs = (float(g or 0) for g in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def test_compose_file_matches_the_compose_specification() -> None:
    """The compose file validates against the Compose specification's JSON schema."""
    assert [] == schema_errors(compose())


def test_schema_validation_rejects_a_misspelt_key() -> None:
    """The same validation catches a misspelt service key, so the check above can fail."""
    broken = copy.deepcopy(compose())
    broken["services"]["server"]["portz"] = broken["services"]["server"].pop("ports")
    assert any("portz" in error for error in schema_errors(broken))


def test_stack_has_every_service_with_an_image_or_a_build() -> None:
    """Server, PostgreSQL 16, RabbitMQ, Kafka, Prometheus and Grafana, each with an image or a build."""
    assert STACK <= set(services())
    for name, service in services().items():
        assert "image" in service or "build" in service, name
    assert services()["postgres"]["image"].startswith("postgres:16")


def test_server_is_built_from_the_repository_dockerfile() -> None:
    """The server's build context is the repository root and names its Dockerfile."""
    build = services()["server"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert ROOT == context
    assert (context / build["dockerfile"]).is_file()


def test_depends_on_names_existing_services() -> None:
    """Every dependency is a service of the file; waiting for health needs a healthcheck (the server's is in its
    image)."""
    for name, service in services().items():
        for dependency, condition in dependencies(service).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[dependency], f"{dependency} has no healthcheck"
    assert {"postgres", "rabbitmq", "kafka"} <= set(dependencies(services()["server"]))


def test_volumes_are_declared_and_bind_mounts_exist() -> None:
    """Named volumes are declared at the top level (and all used); bind-mounted files and folders exist."""
    declared = set(compose().get("volumes") or {})
    used: set[str] = set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared == used


def test_published_ports_are_the_settings_ports_and_do_not_collide() -> None:
    """The server publishes its API and metrics ports as its settings give them; no host port is taken twice."""
    http = server_settings().http
    assert {http.port, http.effective_metrics_port} == set(container_ports(services()["server"]))
    host_ports = [port for service in services().values() for port in container_ports(service).values()]
    assert len(set(host_ports)) == len(host_ports)


def test_server_environment_is_valid_configuration() -> None:
    """The server's variables are all settings, and the image's plus the service's load without error."""
    environment = services()["server"]["environment"]
    assert set() == set(environment) - setting_names()
    settings = server_settings()
    assert settings.kafka is not None
    assert settings.rabbitmq is not None


def test_server_reaches_postgres_rabbitmq_and_kafka_as_they_are_configured() -> None:
    """DATABASE_URI, RABBITMQ_ADDR and KAFKA_BROKERS name the services, ports and credentials those services get."""
    env = server_environment()
    database = urlsplit(env["DATABASE_URI"])
    postgres = services()["postgres"]["environment"]
    assert ("postgres", 5432) == (database.hostname, database.port)
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        database.username,
        database.password,
        database.path.lstrip("/"),
    )
    rabbit = urlsplit(env["RABBITMQ_ADDR"])
    broker = services()["rabbitmq"]["environment"]
    assert ("rabbitmq", 5672) == (rabbit.hostname, rabbit.port)
    assert (broker["RABBITMQ_DEFAULT_USER"], broker["RABBITMQ_DEFAULT_PASS"]) == (rabbit.username, rabbit.password)
    kafka = services()["kafka"]["environment"]
    advertised = {urlsplit(listener).netloc for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert set(env["KAFKA_BROKERS"].split(",")) <= advertised


def test_stop_grace_period_covers_the_shutdown_deadline() -> None:
    """Compose waits longer than SCOUTER_SHUTDOWN_DEADLINE before SIGKILL, so the drain can finish."""
    server = services()["server"]
    assert seconds(server["stop_grace_period"]) > server_settings().shutdown_deadline


def test_optional_env_file_holds_the_secrets() -> None:
    """Secrets come from an optional env file beside the compose file, never from the compose file itself."""
    (env_file,) = services()["server"]["env_file"]
    assert (env_file["path"], env_file["required"]) == ("scouter.env", False)
    text = COMPOSE.read_text()
    for secret in ("SCOUTER_ENCRYPT_SECRET:", "SCOUTER_REFRESH_SECRET:", "SCOUTER_BOOTSTRAP_KEY:"):
        assert secret not in text
