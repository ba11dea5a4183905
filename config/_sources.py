"""Where the settings' variables come from: the process environment, an env file, and ``NAME_FILE`` variables.

* ``SCOUTER_ENV_FILE=/path``: a file of ``NAME=value`` lines (python-dotenv's syntax: ``#`` comments, quotes,
  ``export``; no ``${...}`` expansion, so a ``$`` in a password stays a ``$``).
* ``NAME_FILE=/path`` (the Docker / Kubernetes secrets convention, for every setting): NAME's value is the file's
  content, without its trailing newline.

Both are read each time the settings are loaded, so a SIGHUP picks up a rotated password or secret. A name given in
two places (the environment and the env file, or NAME and NAME_FILE) is an error naming both: a reload must never
silently keep the old value. Errors never include a file's content.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from pathlib import Path

import attrs
from dotenv.parser import parse_stream

ENV_FILE = "SCOUTER_ENV_FILE"
FILE_SUFFIX = "_FILE"


@attrs.frozen
class Environment:
    """Every variable by name, files read: no ``NAME_FILE`` and no ``SCOUTER_ENV_FILE`` left in ``values``."""

    values: dict[str, str]
    #: For each value that did not come from the process environment, where it came from (``DATABASE_URI_FILE=…``).
    origins: dict[str, str]


def _read(variable: str, path: str, problems: list[str]) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        problems.append(f"{variable}={path!r}: cannot read it: {reason}")
        return None


def _env_file(path: str, values: dict[str, str], origins: dict[str, str], problems: list[str]) -> None:
    text = _read(ENV_FILE, path, problems)
    if text is None:
        return
    where = f"{ENV_FILE}={path}"
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            problems.append(f"{where}: line {binding.original.line}: not a NAME=value line")
            continue
        if binding.key is None:  # a blank or comment line
            continue
        if binding.value is None:
            problems.append(f"{where}: line {binding.original.line}: {binding.key} has no '=value'")
            continue
        if binding.key == ENV_FILE:
            problems.append(f"{where}: line {binding.original.line}: an env file cannot name another")
            continue
        if binding.key in values:
            problems.append(f"{binding.key} is set both in the environment and in {where}: set it in one place")
            continue
        values[binding.key] = binding.value
        origins[binding.key] = where


def read_environment(env: Mapping[str, str], names: Collection[str], problems: list[str]) -> Environment:
    """``env`` with the env file and the ``NAME_FILE`` files of ``names`` read in; problems appended to ``problems``."""
    values = dict(env)
    origins: dict[str, str] = {}
    path = values.pop(ENV_FILE, "").strip()
    if path:
        _env_file(path, values, origins, problems)
    for name in names:
        variable = name + FILE_SUFFIX
        if variable not in values:
            continue
        path = values.pop(variable).strip()
        if not path:
            continue  # an empty variable counts as unset
        if name in values:
            problems.append(f"{name} and {variable} are both set: set only one")
            continue
        text = _read(variable, path, problems)
        if text is None:
            continue
        values[name] = text.removesuffix("\n").removesuffix("\r")  # editors and `echo` end files with a newline
        origins[name] = f"{variable}={path}"
    return Environment(values, origins)
