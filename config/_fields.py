"""How a settings field names its environment variable, and the validators the settings share."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

import attrs

ENV = "env"
SECRET = "secret"
HELP = "help"


def env(name: str, default: Any, *, help: str, secret: bool = False, validator: Any = None) -> Any:
    """A settings field read from the environment variable ``name``."""
    # Secrets stay out of repr(), so a settings object in a log line or a traceback never shows them.
    return attrs.field(
        default=default, validator=validator, repr=not secret, metadata={ENV: name, SECRET: secret, HELP: help}
    )


def at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")

    return check


def between(low: int, high: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")

    return check


def one_of(choices: Collection[str], *, fold_case: bool = True) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        candidate = value.lower() if fold_case else value
        allowed = {c.lower() for c in choices} if fold_case else set(choices)
        if candidate not in allowed:
            raise ValueError(f"must be one of {', '.join(choices)}")

    return check


def url_scheme(*schemes: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        parts = urlsplit(value)  # ValueError for a malformed [IPv6] host
        if parts.scheme not in schemes:
            raise ValueError(
                f"unknown URI scheme {parts.scheme!r}; expected one of {', '.join(s + '://' for s in schemes)}"
            )
        try:  # a port the clients cannot parse would fail at every connection attempt: refuse it at start-up
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise ValueError("the port must be a number from 0 to 65535") from None

    return check


STORAGE_SCHEMES = ("s3", "gs", "az", "file", "memory")


def storage_uri(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """A cloud bucket URI, a file:// URI, or a plain local path."""
    if not value.strip():
        raise ValueError("must not be empty")
    scheme = urlsplit(value).scheme
    if "://" in value and scheme not in STORAGE_SCHEMES:
        raise ValueError(
            f"unknown URI scheme {scheme!r}; expected a local path or one of "
            + ", ".join(s + "://" for s in STORAGE_SCHEMES)
        )
