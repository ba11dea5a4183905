"""The user store: every read and write of `scouter."user"`, and the default users of a first start (§2.3).

Each function is one unit of work that crosses into asyncio once (`Database.run`); callers get plain values
(`UserRow`, enums, booleans), never asyncpg objects. Password hashing is CPU-heavy and stays with the caller, which
runs it in a worker thread; only hashes reach this module.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import attrs
import orjson
import trio

from config import AuthSettings
from scouter.auth import (
    ADMIN_GROUP,
    GUEST_USERNAME,
    Identity,
    default_users,
    hash_password,
    new_recovery_codes,
    verify_password,
)
from scouter.wire.v064_accounts import UserResponse

from .database import Database

log = logging.getLogger("actors.users")

T = TypeVar("T")

#: pg_advisory_xact_lock key taken while creating the default users ("users" in ASCII), so replicas starting
#: together on an empty table create them once.
DEFAULT_USERS_LOCK_KEY = 0x7573657273

_COLUMNS = (
    "username, email, active, role, permissions, group_permissions, favorite_spaces, password_hash,"
    " refresh_token, refresh_expires_at, tokens_valid_after"
)


def _strings(raw: Any) -> tuple[str, ...]:
    # jsonb arrives as text (the pool registers no JSON codec); a non-list value is treated as empty.
    value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _json(values: Iterable[str]) -> str:
    return orjson.dumps(list(values)).decode()


@attrs.frozen
class UserRow:
    """One stored user. `refresh_hash` is the SHA-256 of the current refresh token (never the token)."""

    username: str
    email: str
    active: bool
    role: str
    permissions: tuple[str, ...]
    group_permissions: tuple[str, ...]
    favorite_spaces: tuple[str, ...]
    password_hash: str = attrs.field(repr=False)
    refresh_hash: str | None = attrs.field(repr=False)
    refresh_expires_at: datetime | None
    #: Access tokens issued before this moment (the last password change) are refused.
    tokens_valid_after: datetime | None = None

    @classmethod
    def from_record(cls, record: Any) -> UserRow:
        return cls(
            username=record["username"],
            email=record["email"],
            active=record["active"],
            role=record["role"],
            permissions=_strings(record["permissions"]),
            group_permissions=_strings(record["group_permissions"]),
            favorite_spaces=_strings(record["favorite_spaces"]),
            password_hash=record["password_hash"],
            refresh_hash=record["refresh_token"],
            refresh_expires_at=record["refresh_expires_at"],
            tokens_valid_after=record["tokens_valid_after"],
        )

    @property
    def identity(self) -> Identity:
        """Who requests act as: the stored permissions, not those a token was minted with."""
        return Identity(self.username, self.permissions, self.group_permissions)

    def refresh_valid(self, now: float) -> bool:
        """True when a refresh token is stored and has not expired at `now` (epoch seconds)."""
        return (
            self.refresh_hash is not None
            and self.refresh_expires_at is not None
            and self.refresh_expires_at.timestamp() > now
        )

    def response(self) -> UserResponse:
        """Upstream's `UserResponse`: never the password hash, recovery codes or refresh token."""
        return UserResponse(
            username=self.username,
            email=self.email,
            active=self.active,
            role=self.role,
            permissions=list(self.permissions),
            group_permissions=list(self.group_permissions),
            favorite_spaces=list(self.favorite_spaces),
        )


@attrs.frozen
class NewUser:
    """A user to insert; `password_hash` and `recovery_hashes` are already argon2id PHC strings."""

    username: str
    email: str
    password_hash: str = attrs.field(repr=False)
    recovery_hashes: tuple[str, ...] = attrs.field(repr=False)
    permissions: tuple[str, ...]
    group_permissions: tuple[str, ...]
    role: str
    active: bool = True


class Created(enum.Enum):
    CREATED = "created"
    USERNAME_TAKEN = "username taken"
    EMAIL_TAKEN = "email taken"


class Deleted(enum.Enum):
    DELETED = "deleted"  # also when there was no such user, as upstream
    LAST_ADMIN = "last admin"


def epoch_to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


#: argon2 hashing costs ~19 MiB and tens of milliseconds of CPU per call; bounding the threads doing it at once
#: bounds memory under a login storm while keeping the event loop free.
_HASHING = trio.CapacityLimiter(4)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a password hash or verification in a worker thread (argon2-cffi releases the GIL)."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_HASHING)


# -- reads ------------------------------------------------------------------------------------------------------
async def get_user(db: Database, username: str) -> UserRow | None:
    """The user named `username` (one indexed SELECT), or None."""
    record = await db.fetchrow(f'SELECT {_COLUMNS} FROM scouter."user" WHERE username = $1', username)
    return None if record is None else UserRow.from_record(record)


async def list_users(db: Database) -> list[UserRow]:
    """Every user, oldest first."""
    records = await db.fetch(f'SELECT {_COLUMNS} FROM scouter."user" ORDER BY id')
    return [UserRow.from_record(record) for record in records]


# -- writes -----------------------------------------------------------------------------------------------------
_INSERT = """
INSERT INTO scouter."user"
    (username, email, password_hash, hashed_recovery_codes, permissions, group_permissions, role, active)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8)
"""


def _insert_args(user: NewUser) -> tuple[Any, ...]:
    return (
        user.username,
        user.email,
        user.password_hash,
        _json(user.recovery_hashes),
        _json(user.permissions),
        _json(user.group_permissions),
        user.role,
        user.active,
    )


async def _create(conn: asyncpg.Connection, args: tuple[Any, ...]) -> Created:  # asyncio side
    try:
        await conn.execute(_INSERT, *args)
    except asyncpg.UniqueViolationError as exc:
        # The constraint names which unique column clashed; a username race lands here too.
        constraint = exc.constraint_name or ""
        return Created.EMAIL_TAKEN if "email" in constraint else Created.USERNAME_TAKEN
    return Created.CREATED


async def create_user(db: Database, user: NewUser) -> Created:
    """Insert `user`; say which unique column was taken instead of raising."""
    return await db.run(_create, _insert_args(user))


class LastAdmin(Exception):
    """The change would leave no active user in the admin group, and so nobody able to manage users."""


#: Who holds admin rights: active members of the `admin` group (`scouter.auth.is_admin`; `role` grants nothing).
#: Locking their rows serialises concurrent changes: a second transaction re-reads them after the first commits,
#: so two admins removed at once cannot leave none.
_ADMINS_FOR_UPDATE = (
    'SELECT username FROM scouter."user" WHERE active AND group_permissions ? $1 ORDER BY username FOR UPDATE'
)

_UPDATE = f"""
UPDATE scouter."user" SET
    password_hash = COALESCE($2, password_hash),
    permissions = COALESCE($3::jsonb, permissions),
    group_permissions = COALESCE($4::jsonb, group_permissions),
    active = COALESCE($5, active),
    favorite_spaces = COALESCE($6::jsonb, favorite_spaces),
    refresh_token = CASE WHEN $7 THEN NULL ELSE refresh_token END,
    refresh_expires_at = CASE WHEN $7 THEN NULL ELSE refresh_expires_at END,
    tokens_valid_after = CASE WHEN $2 IS NOT NULL THEN now() ELSE tokens_valid_after END,
    updated_at = now()
WHERE username = $1
RETURNING {_COLUMNS}
"""


async def _admins(conn: asyncpg.Connection) -> list[str]:  # asyncio side, in a transaction
    return [record["username"] for record in await conn.fetch(_ADMINS_FOR_UPDATE, ADMIN_GROUP)]


async def _update(conn: asyncpg.Connection, args: tuple[Any, ...], removes_admin: bool) -> Any:  # in a transaction
    if removes_admin and await _admins(conn) == [args[0]]:
        raise LastAdmin(args[0])
    return await conn.fetchrow(_UPDATE, *args)


async def update_user(
    db: Database,
    username: str,
    *,
    password_hash: str | None = None,
    permissions: Sequence[str] | None = None,
    group_permissions: Sequence[str] | None = None,
    active: bool | None = None,
    favorite_spaces: Sequence[str] | None = None,
    revoke_refresh: bool = False,
) -> UserRow | None:
    """Write the given fields (None leaves a column as it is); the updated user, or None when there is none.

    `revoke_refresh` deletes the stored refresh token, so no token of the user renews any more. Raises `LastAdmin`
    when the change would take the admin group from, or deactivate, the only active admin.
    """
    args = (
        username,
        password_hash,
        None if permissions is None else _json(permissions),
        None if group_permissions is None else _json(group_permissions),
        active,
        None if favorite_spaces is None else _json(favorite_spaces),
        revoke_refresh,
    )
    removes_admin = active is False or (group_permissions is not None and ADMIN_GROUP not in group_permissions)
    record = await db.run(_update, args, removes_admin, transaction=True)
    return None if record is None else UserRow.from_record(record)


async def _delete(conn: asyncpg.Connection, username: str) -> Deleted:  # asyncio side, in a transaction
    if await _admins(conn) == [username]:
        return Deleted.LAST_ADMIN
    await conn.execute('DELETE FROM scouter."user" WHERE username = $1', username)
    return Deleted.DELETED


async def delete_user(db: Database, username: str) -> Deleted:
    """Delete `username` unless it is the only active user of the admin group (what grants admin rights)."""
    return await db.run(_delete, username, transaction=True)


async def store_refresh(db: Database, username: str, token_hash: str, expires_at: float) -> bool:
    """Save a new refresh token hash and its expiry; False when the user no longer exists."""
    status = await db.execute(
        'UPDATE scouter."user" SET refresh_token = $2, refresh_expires_at = $3, updated_at = now() WHERE username = $1',
        username,
        token_hash,
        epoch_to_datetime(expires_at),
    )
    return status == "UPDATE 1"


async def rotate_refresh(db: Database, username: str, token_hash: str, expires_at: float, now: float) -> bool:
    """Replace the refresh token only if the user is active and the stored one is still valid at `now`.

    The checks sit in the UPDATE itself, so a refresh token revoked or expired since it was read cannot be renewed.
    """
    status = await db.execute(
        'UPDATE scouter."user" SET refresh_token = $2, refresh_expires_at = $3, updated_at = now()'
        " WHERE username = $1 AND active AND refresh_token IS NOT NULL AND refresh_expires_at > $4",
        username,
        token_hash,
        epoch_to_datetime(expires_at),
        epoch_to_datetime(now),
    )
    return status == "UPDATE 1"


# -- default users ----------------------------------------------------------------------------------------------
async def _insert_defaults(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> list[str]:  # in a transaction
    await conn.execute("SELECT pg_advisory_xact_lock($1)", DEFAULT_USERS_LOCK_KEY)
    if await conn.fetchval('SELECT EXISTS (SELECT 1 FROM scouter."user")'):
        return []  # another replica got there first
    created = []
    for args in rows:
        # ON CONFLICT: belt and braces should a user appear without taking the lock.
        username = await conn.fetchval(_INSERT.rstrip() + " ON CONFLICT DO NOTHING RETURNING username", *args)
        if username is not None:
            created.append(username)
    return created


def _default_rows(auth: AuthSettings) -> list[tuple[Any, ...]]:
    rows = []
    for user in default_users(auth.default_username, auth.default_password):
        if auth.strict_secrets and user.username == GUEST_USERNAME:
            continue  # strict mode creates no account with a built-in password
        _, recovery_hashes = new_recovery_codes(user.recovery_codes)
        new = NewUser(
            username=user.username,
            email=user.email,
            password_hash=hash_password(user.password),
            recovery_hashes=recovery_hashes,
            permissions=user.permissions,
            group_permissions=user.group_permissions,
            role=user.role,
        )
        rows.append(_insert_args(new))
    return rows


async def ensure_default_users(db: Database, auth: AuthSettings) -> list[str]:
    """Create the admin and guest users when `scouter.user` is empty; return the names created (often none).

    Safe for replicas starting together: the insert runs under a transaction-level advisory lock and re-checks
    that the table is still empty. With SCOUTER_STRICT_SECRETS the guest is not created.
    """
    if await db.fetchval('SELECT EXISTS (SELECT 1 FROM scouter."user")'):
        return []
    rows = await off_loop(_default_rows, auth)  # four argon2 hashes: keep them off the event loop
    created = await db.run(_insert_defaults, rows, transaction=True)
    if created:
        log.info("created the default users %s", ", ".join(created))
    return created


async def built_in_password_accounts(db: Database, auth: AuthSettings) -> list[str]:
    """The active default accounts (the configured admin, the guest) whose stored password is still built in."""
    names = []
    for username, password in ((auth.default_username, "admin"), (GUEST_USERNAME, "guest")):
        user = await get_user(db, username)
        if user is not None and user.active and await off_loop(verify_password, password, user.password_hash):
            names.append(username)
    return names


async def prepare_users(db: Database, auth: AuthSettings) -> None:
    """What the database actor runs before reporting ready: the default users of a first start, then, at every
    start, a warning for each default account still using its built-in password (as for the default secrets)."""
    await ensure_default_users(db, auth)
    for username in await built_in_password_accounts(db, auth):
        password = "guest" if username == GUEST_USERNAME else "admin"
        rights = "has write on every space" if username == GUEST_USERNAME else "is an admin"
        log.warning(
            "the user %r still has the built-in password %r and %s: anyone can log in as it;"
            " change its password or deactivate it",
            username,
            password,
            rights,
        )
