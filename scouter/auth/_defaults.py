"""Upstream's built-in credentials: the default secret, the two default users and the bootstrap key (§2.2, §2.3).

They are kept for drop-in compatibility; `uses_default_secrets` lets start-up warn loudly (§12 #7) or refuse to
start in a strict mode.
"""

from __future__ import annotations

import hmac

import attrs

from ._identity import Identity

# base64 of bytes 31, 30, ..., 0; used as raw UTF-8 text (never decoded) for the access secret, the refresh
# secret and the bootstrap key when their variables are unset.
DEFAULT_SECRET = "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="

ENCRYPT_SECRET_VAR = "SCOUTER_ENCRYPT_SECRET"
REFRESH_SECRET_VAR = "SCOUTER_REFRESH_SECRET"
BOOTSTRAP_KEY_VAR = "SCOUTER_BOOTSTRAP_KEY"

# HMAC-SHA256 keys shorter than the digest weaken it; PyJWT also emits InsecureKeyLengthWarning on every use.
MIN_SECRET_BYTES = 32


def uses_default_secrets(encrypt: str | None, refresh: str | None, bootstrap: str | None) -> list[str]:
    """Name the environment variables whose value is the built-in default (or unset, which means the default)."""
    settings = ((ENCRYPT_SECRET_VAR, encrypt), (REFRESH_SECRET_VAR, refresh), (BOOTSTRAP_KEY_VAR, bootstrap))
    return [name for name, value in settings if value is None or value == DEFAULT_SECRET]


def short_secrets(encrypt: str | None, refresh: str | None) -> list[str]:
    """Name the JWT secret variables whose UTF-8 value is shorter than 32 bytes (unset means the default)."""
    settings = ((ENCRYPT_SECRET_VAR, encrypt), (REFRESH_SECRET_VAR, refresh))
    return [name for name, value in settings if len(_effective(value).encode()) < MIN_SECRET_BYTES]


def _effective(secret: str | None) -> str:
    return DEFAULT_SECRET if secret is None else secret


@attrs.frozen
class DefaultUser:
    """A user created at first start (plain-text password: the caller hashes it and its recovery codes)."""

    username: str
    password: str
    email: str
    permissions: tuple[str, ...]
    group_permissions: tuple[str, ...]
    role: str
    recovery_codes: int = 1  # upstream stores one hashed code per default user and never shows it


GUEST_USERNAME = "guest"


def default_users(admin_username: str = "admin", admin_password: str = "admin") -> tuple[DefaultUser, DefaultUser]:
    """The admin (from SCOUTER_DEFAULT_USERNAME/PASSWORD) and guest users to create when `scouter.user` is empty.

    Both must exist: `HTTPConfig()` logs in as admin/admin, a bare `ScouterClient()` as guest/guest.
    """
    if admin_username == GUEST_USERNAME:
        # Upstream fails at start-up too (unique username); say why instead of failing in the INSERT.
        raise ValueError(f"the default admin user cannot be named {GUEST_USERNAME!r}: that user is created as well")
    admin = DefaultUser(
        username=admin_username,
        password=admin_password,
        email="admin",
        permissions=("read:all", "write:all"),
        group_permissions=("admin",),
        role="admin",
    )
    guest = DefaultUser(
        username=GUEST_USERNAME,
        password="guest",
        email="default",
        permissions=("read:all", "write:all", "delete:all"),
        group_permissions=("user",),
        role="guest",
    )
    return admin, guest


BOOTSTRAP_IDENTITY = Identity("bootstrap", ("admin",), ("admin",))


def bootstrap_grants(presented: str | None, bootstrap_key: str, *, method: str, path: str) -> bool:
    """True when an `x-bootstrap-token` header value unlocks this request as `BOOTSTRAP_IDENTITY`.

    As upstream: the key must match (compared in constant time) and the request must be a POST to a path containing
    `/user`, or any request to a path containing `/healthcheck`.
    """
    if not presented or not bootstrap_key:
        return False  # an empty configured key must not match an empty header
    if not hmac.compare_digest(presented.encode(), bootstrap_key.encode()):
        return False
    return (method.upper() == "POST" and "/user" in path) or "/healthcheck" in path
