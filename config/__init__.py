"""Server settings: frozen attrs classes built once from the environment and passed down explicitly."""

from ._load import VARIABLES, ConfigError, describe, load_settings, settings_environment
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
from ._sources import ENV_FILE, FILE_SUFFIX, Environment

__all__ = [
    "DEFAULT_DATABASE_URI",
    "DEFAULT_SECRET",
    "ENV_FILE",
    "FILE_SUFFIX",
    "VARIABLES",
    "AuthSettings",
    "ConfigError",
    "DatabaseSettings",
    "DispatchSettings",
    "Environment",
    "HttpSettings",
    "KafkaSettings",
    "LogSettings",
    "RabbitSettings",
    "Settings",
    "StorageSettings",
    "describe",
    "load_settings",
    "settings_environment",
]
