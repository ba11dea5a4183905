"""Permission checks (§2.2) and the declarative per-route requirement the HTTP layer uses.

Upstream's rules: a permission is held when it is listed in `permissions` or when the `admin` group is present;
space checks also accept `<action>:all`. The admin-only user routes look at `group_permissions` only (never
`role`). Error bodies are upstream's: 403 `{"error":"Permission denied"}` for space checks and "admin or self"
user routes, 403 `{"error":"Need admin permission"}` for the admin-only user routes (POST, GET list, DELETE).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ._identity import Identity

ADMIN_GROUP = "admin"


def is_admin(identity: Identity) -> bool:
    """True when the identity is in the `admin` group."""
    return ADMIN_GROUP in identity.group_permissions


def has_permission(identity: Identity, permission: str) -> bool:
    """True when `permission` is listed, or the identity is in the admin group (which holds every permission)."""
    return permission in identity.permissions or is_admin(identity)


def can_read(identity: Identity, space: str) -> bool:
    """Read on a space: `read:<space>`, `read:all`, or the admin group."""
    return _can(identity, "read", space)


def can_write(identity: Identity, space: str) -> bool:
    """Write on a space: `write:<space>`, `write:all`, or the admin group."""
    return _can(identity, "write", space)


def can_delete(identity: Identity, space: str) -> bool:
    """Delete on a space: `delete:<space>`, `delete:all`, or the admin group (no v0.6.4 route uses it)."""
    return _can(identity, "delete", space)


def first_unwritable(identity: Identity, spaces: Iterable[str]) -> str | None:
    """The first of `spaces` (in sorted order, so the answer is stable) `identity` may not write; None if none."""
    return next((space for space in sorted(spaces) if not can_write(identity, space)), None)


def _can(identity: Identity, action: str, space: str) -> bool:
    return has_permission(identity, f"{action}:{space}") or f"{action}:all" in identity.permissions


@attrs.frozen
class Denied:
    """A refused request: the HTTP status and upstream's `{"error": ...}` message."""

    status: int
    error: str

    @property
    def body(self) -> dict[str, str]:
        """The JSON response body, a fresh dict each time."""
        return {"error": self.error}


PERMISSION_DENIED = Denied(403, "Permission denied")
NEED_ADMIN = Denied(403, "Need admin permission")


class Access(enum.Enum):
    """What a route requires of an authenticated identity."""

    AUTHENTICATED = "authenticated"
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"
    ADMIN_OR_SELF = "admin_or_self"


@attrs.frozen
class Requirement:
    """A route's authorisation rule; `param` names the request field holding the space or user name.

    `param` is for the HTTP layer: it reads that field and passes its value to `check` as `space=` or `username=`.
    """

    access: Access
    param: str | None = None

    @classmethod
    def authenticated(cls) -> Requirement:
        """Any valid identity (upstream's alert and observability routes)."""
        return cls(Access.AUTHENTICATED)

    @classmethod
    def read(cls, param: str = "space") -> Requirement:
        """Read permission on the space found in `param`."""
        return cls(Access.READ, param)

    @classmethod
    def write(cls, param: str = "space") -> Requirement:
        """Write permission on the space found in `param`."""
        return cls(Access.WRITE, param)

    @classmethod
    def delete(cls, param: str = "space") -> Requirement:
        """Delete permission on the space found in `param`."""
        return cls(Access.DELETE, param)

    @classmethod
    def admin(cls) -> Requirement:
        """The admin group (POST/GET-list/DELETE user)."""
        return cls(Access.ADMIN)

    @classmethod
    def admin_or_self(cls, param: str = "username") -> Requirement:
        """The admin group, or the user named in `param` (GET/PUT user)."""
        return cls(Access.ADMIN_OR_SELF, param)


_SPACE_CHECKS = {Access.READ: can_read, Access.WRITE: can_write, Access.DELETE: can_delete}


def check(
    requirement: Requirement, identity: Identity, *, space: str | None = None, username: str | None = None
) -> Denied | None:
    """Return `None` when `identity` meets `requirement`, else the `Denied` answer to send.

    Space requirements need `space=` and "admin or self" needs `username=`; a missing value is a programming
    error in the route (the request should have been rejected as malformed before), so it raises `ValueError`.
    """
    access = requirement.access
    if access is Access.AUTHENTICATED:
        return None
    if access is Access.ADMIN:
        return None if is_admin(identity) else NEED_ADMIN
    if access is Access.ADMIN_OR_SELF:
        if username is None:
            raise ValueError(f"{requirement!r} needs username=")
        return None if is_admin(identity) or identity.username == username else PERMISSION_DENIED
    if space is None:
        raise ValueError(f"{requirement!r} needs space=")
    return None if _SPACE_CHECKS[access](identity, space) else PERMISSION_DENIED
