"""The repository's deployment files, loaded once, and what the configuration knows about."""

from __future__ import annotations

import functools
import tomllib
import typing
from pathlib import Path
from typing import Any

import attrs
import yaml

from config import Settings, describe, load_settings

from .dockerfile import DockerIgnore, Stage, stages

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
#: Variables the image sets for Python and the shell, not for the server.
RUNTIME_VARIABLES = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@functools.cache
def dockerfile() -> tuple[Stage, ...]:
    return tuple(stages((ROOT / "Dockerfile").read_text()))


@functools.cache
def dockerignore() -> DockerIgnore:
    return DockerIgnore((ROOT / ".dockerignore").read_text())


@functools.cache
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


def setting_names() -> set[str]:
    """Every environment variable the server reads, the optional Kafka and RabbitMQ sections included."""
    every_section_on = {"KAFKA_BROKERS": "localhost:9092", "RABBITMQ_ADDR": "amqp://localhost"}
    return {name for name, _, _ in describe(load_settings(every_section_on))}


def image_environment() -> dict[str, str]:
    """The server's settings variables that the image's final stage sets."""
    env = dockerfile()[-1].env()
    return {k: v for k, v in env.items() if k not in RUNTIME_VARIABLES}


def server_environment() -> dict[str, str]:
    """What the compose file's server sees: the image's variables overridden by the service's."""
    service = compose()["services"]["server"]
    return image_environment() | {k: str(v) for k, v in service.get("environment", {}).items()}


def server_settings() -> Settings:
    return load_settings(server_environment())


def setting_defaults() -> dict[str, Any]:
    """Each environment variable's default, the optional sections' included."""
    defaults: dict[str, Any] = {}

    def walk(cls: type) -> None:
        hints = typing.get_type_hints(cls)
        for field in attrs.fields(cls):
            section = next(
                (t for t in typing.get_args(hints[field.name]) or (hints[field.name],) if attrs.has(t)), None
            )
            if section is not None:
                walk(section)
            elif "env" in field.metadata:
                defaults[field.metadata["env"]] = field.default

    walk(Settings)
    return defaults
