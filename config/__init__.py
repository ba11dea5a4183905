"""Server settings: frozen attrs classes built once from the environment and passed down explicitly."""

from ._load import ConfigError, describe, load_settings
from ._settings import (
    DEFAULT_DATABASE_URI,
    DEFAULT_SECRET,
    AuthSettings,
    DatabaseSettings,
    DispatchSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    RabbitSettings,
    Settings,
    StorageSettings,
)

__all__ = [
    "DEFAULT_DATABASE_URI",
    "DEFAULT_SECRET",
    "AuthSettings",
    "ConfigError",
    "DatabaseSettings",
    "DispatchSettings",
    "HttpSettings",
    "KafkaSettings",
    "LogSettings",
    "RabbitSettings",
    "Settings",
    "StorageSettings",
    "describe",
    "load_settings",
]
