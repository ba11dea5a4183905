"""Who a request acts as: the part of a user that tokens carry and permission checks read."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    # Lists arrive from JSON claims and DB rows; a tuple keeps the value hashable and immutable.
    return tuple(values)


@attrs.frozen
class Identity:
    """A user name with its permissions (`read:<space>`, `write:all`, ...) and groups (`admin`, `user`, ...)."""

    username: str
    permissions: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    group_permissions: tuple[str, ...] = attrs.field(default=(), converter=_strings)
