"""Server-chosen profile versions of the scouter-ml 0.25 registration (server-v025.md §5.2), pure.

The 0.25 client sends a ``version_request`` (``version`` or null, ``version_type``, ``pre_tag``, ``build_tag``) and the
server picks the version: the highest existing version of the same (space, name, drift_type) inside the request's
bounds, bumped by ``version_type``; or, with nothing inside the bounds, the requested version itself (``0.1.0`` when
none was requested).

Differences from upstream v0.25.0, on purpose ([BUG] [PY] in the spec): bounds come from the numeric
major.minor.patch only, so a pre-release or build suffix (``1.0.0-rc.1``) works instead of a 500, ``^1.2`` is treated
like ``1.2`` instead of failing, and a requested suffix is kept when the requested version is used as is. Stored
versions that are not semantic versions (0.6.4 accepted any string) are never candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

import semver

__all__ = ["FIRST_VERSION", "MAX_CANDIDATES", "VERSION_TYPES", "VersionError", "next_version", "parse_version"]

VERSION_TYPES: Final = ("Major", "Minor", "Patch", "Pre", "Build", "PreBuild")
FIRST_VERSION: Final = "0.1.0"
#: With a requested version, only the most recently created candidates inside its bounds count (upstream's LIMIT 20).
MAX_CANDIDATES: Final = 20


class VersionError(ValueError):
    """A version request that cannot be resolved; ``reason`` names the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_version(text: str) -> semver.Version | None:
    """``text`` as a semantic version (``2`` and ``2.1`` completed with zeros), or None when it is not one."""
    try:
        return semver.Version.parse(text, optional_minor_and_patch=True)
    except (ValueError, TypeError):
        return None


def _bounds(requested: str) -> tuple[int | None, int | None, int | None, bool]:
    """(major, minor, patch, patch_is_floor) the candidates must match; None matches anything."""
    text = requested.strip()
    caret_or_tilde = text[:1] in ("^", "~")
    core = text.lstrip("^~").split("+", 1)[0].split("-", 1)[0]
    parts = [part for part in core.split(".") if part not in ("*", "")]
    if len(parts) > 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise VersionError(f"version_request.version: not a semantic version or range, got {requested!r}")
    numbers = [int(part) for part in parts] + [None] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2], caret_or_tilde and len(parts) == 3


def _inside(version: semver.Version, bounds: tuple[int | None, int | None, int | None, bool]) -> bool:
    major, minor, patch, patch_is_floor = bounds
    if major is not None and version.major != major:
        return False
    if minor is not None and version.minor != minor:
        return False
    if patch is None:
        return True
    return version.patch >= patch if patch_is_floor else version.patch == patch


def _with_tags(version: semver.Version, pre_tag: str | None, build_tag: str | None) -> semver.Version:
    if pre_tag is not None:
        version = version.replace(prerelease=pre_tag)
    if build_tag is not None:
        version = version.replace(build=build_tag)
    return version


def next_version(
    existing: Iterable[tuple[str, datetime]],
    requested: str | None,
    version_type: str,
    pre_tag: str | None = None,
    build_tag: str | None = None,
) -> str:
    """The version a 0.25 registration gets, given the (version, created_at) of every profile row of the same
    space, name and drift type."""
    if version_type not in VERSION_TYPES:
        raise VersionError(f"version_request.version_type: expected one of {', '.join(VERSION_TYPES)}")
    candidates = [(parsed, created) for text, created in existing if (parsed := parse_version(text)) is not None]
    if requested is not None:
        bounds = _bounds(requested)
        candidates = [(v, created) for v, created in candidates if _inside(v, bounds)]
        candidates = sorted(candidates, key=lambda vc: vc[1], reverse=True)[:MAX_CANDIDATES]
    try:
        if not candidates:
            if requested is None:
                return str(_with_tags(semver.Version.parse(FIRST_VERSION), pre_tag, build_tag))
            given = parse_version(requested.lstrip("^~").replace("*", "0").rstrip("."))
            if given is None:
                raise VersionError(f"version_request.version: not a semantic version, got {requested!r}")
            return str(_with_tags(given, pre_tag, build_tag))
        highest = max(v for v, _ in candidates).replace(prerelease=None, build=None)
        if version_type == "Major":
            highest = highest.bump_major()
        elif version_type == "Minor":
            highest = highest.bump_minor()
        elif version_type == "Patch":
            highest = highest.bump_patch()
        return str(_with_tags(highest, pre_tag, build_tag))
    except ValueError as exc:  # a tag semver refuses (e.g. characters outside [0-9A-Za-z-.])
        raise VersionError(f"version_request: {exc}") from None
