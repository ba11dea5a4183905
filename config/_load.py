"""Build Settings from an environment mapping with cattrs; report every bad variable at once."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import cattrs

from ._fields import ENV, HELP, SECRET
from ._settings import ENABLED_BY, Settings
from ._sources import Environment, read_environment

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """Invalid configuration: ``problems`` has one line per bad variable, naming it and its (masked) value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration: " + "; ".join(problems))


def _parse_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _parse_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _parse_float(value: Any, _: type) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        result = float(str(value).strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return result


def _parse_str_tuple(value: Any, _: type) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    result = tuple(item.strip() for item in items if item.strip())
    if not result:
        raise ValueError("expected a comma-separated list with at least one item")
    return result


_converter = cattrs.Converter()
_converter.register_structure_hook(bool, _parse_bool)
_converter.register_structure_hook(int, _parse_int)
_converter.register_structure_hook(float, _parse_float)
_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _parse_str_tuple)


def _section_type(annotation: Any) -> type | None:
    """The attrs class behind a field's type (``X`` or ``X | None``), or None for a plain value."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if attrs.has(candidate):
            return candidate
    return None


def _mask(field: attrs.Attribute[Any], value: Any) -> str:
    return "'***'" if field.metadata.get(SECRET) and value not in (None, "") else repr(value)


def _build(cls: type, env: Mapping[str, str], problems: list[str], origins: Mapping[str, str]) -> Any:
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        section = _section_type(hints[field.name])
        if section is not None:
            enabler = ENABLED_BY.get(section)
            if enabler is not None and enabler not in env:
                continue  # an optional section stays None (its transport is off)
            kwargs[field.name] = _build(section, env, problems, origins)
            continue
        name = field.metadata.get(ENV)
        if name is None or name not in env:
            continue
        raw = env[name]
        if field.default is None and not raw.strip():
            continue  # an empty optional variable counts as unset
        try:
            value = _converter.structure(raw, hints[field.name])
            if field.validator is not None:
                field.validator(None, field, value)
        except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
            origin = f" (from {origins[name]})" if name in origins else ""
            problems.append(f"{name}={_mask(field, raw)}{origin}: {exc}")
            continue
        kwargs[field.name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:  # cross-field checks (__attrs_post_init__)
        problems.append(str(exc))
        return None


def _variables(cls: type) -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        section = _section_type(hints[field.name])
        if section is not None:
            yield from _variables(section)
        elif ENV in field.metadata:
            yield field.metadata[ENV]


#: Every variable a setting is read from; each may also be given as NAME_FILE.
VARIABLES = tuple(_variables(Settings))


def settings_environment(env: Mapping[str, str]) -> Environment:
    """``env`` with SCOUTER_ENV_FILE and every NAME_FILE read in; raises ConfigError naming what could not be."""
    problems: list[str] = []
    environment = read_environment(env, VARIABLES, problems)
    if problems:
        raise ConfigError(problems)
    return environment


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env`` (usually ``os.environ``), its env file and NAME_FILE files read anew each call;
    raises ConfigError listing every bad variable."""
    problems: list[str] = []
    environment = read_environment(env, VARIABLES, problems)
    settings = _build(Settings, environment.values, problems, environment.origins)
    if problems:
        raise ConfigError(problems)
    return typing.cast(Settings, settings)


def describe(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(variable, effective value with secrets masked, help) for every setting, in declaration order."""

    def walk(obj: Any, cls: type) -> Iterator[tuple[str, str, str]]:
        hints = typing.get_type_hints(cls)
        for field in attrs.fields(cls):
            section = _section_type(hints[field.name])
            value = getattr(obj, field.name) if obj is not None else None
            if section is not None:
                if value is None:
                    yield (ENABLED_BY.get(section, field.name), "(unset: off)", f"{field.name} section")
                    continue
                yield from walk(value, section)
                continue
            if ENV in field.metadata:
                yield (field.metadata[ENV], _mask(field, value), field.metadata.get(HELP, ""))

    yield from walk(settings, Settings)
