"""`/scouter/user` routes (§2.7): create, list, read, update, delete, with upstream's shapes and rules.

Differences from upstream, on purpose: a duplicate e-mail is 409 (upstream: 500 "Failed to create user"); the last
active member of the admin group (what grants admin rights; upstream counted `role`) can be neither deleted nor
demoted nor deactivated: 409 (upstream: 403 on delete only); and
de-duplicated lists keep their first-seen order (upstream went through a set: any order). Request bodies of the
wrong shape get 422 naming the field; unknown fields are ignored, as serde does.
"""

from __future__ import annotations

import logging
from typing import Any, Final, TypeVar

from quart import Blueprint, Response
from werkzeug.exceptions import UnprocessableEntity

from scouter.auth import Requirement, hash_password, is_admin, new_recovery_codes
from scouter.wire.common import FaultyBody, convert_body
from scouter.wire.v064 import ErrorBody, ScouterResponse
from scouter.wire.v064_accounts import CreateUserRequest, CreateUserResponse, UpdateUserRequest, UserList, UserResponse

from .. import users
from ._context import context
from ._guard import guarded, identity, json_object
from ._openapi import BEARER, BEARER_OR_BOOTSTRAP, BODY_ERRORS, GUARD_ERRORS, documented
from ._responses import struct_response

log = logging.getLogger("actors.http.users")

blueprint = Blueprint("users", __name__)

RECOVERY_MESSAGE = "Save these recovery codes securely. They cannot be shown again!"


def _storable(username: str) -> bool:
    """False for a name no user can have: PostgreSQL text holds no NUL (and creating such a user is a 422), so
    asking the database about it would only fail."""
    return "\x00" not in username


# -- request bodies ---------------------------------------------------------------------------------------------
Body = TypeVar("Body", CreateUserRequest, UpdateUserRequest)


def _decoded(body: dict[str, Any], shape: type[Body]) -> Body:
    """`body` as its declaration (`scouter.wire.v064_accounts`), or a 422 worded as the upstream route words it; a
    null is an absent field, and NUL (which PostgreSQL text cannot hold) is refused in every string."""
    body = {key: value for key, value in body.items() if value is not None}
    try:
        decoded = convert_body(body, shape)
    except FaultyBody as exc:
        field, missing, _, expected = exc.fault
        name = field.partition("[")[0]
        if missing:
            raise UnprocessableEntity(f"missing field {name!r}") from None
        if expected.startswith("Expected `str` of length >= "):
            raise UnprocessableEntity(f"field {name!r} must not be empty") from None
        if expected.startswith("Expected `str` of length <= "):
            longest = expected.removeprefix("Expected `str` of length <= ").split(" ")[0].rstrip(",")
            raise UnprocessableEntity(f"field {name!r} must be at most {longest} characters") from None
        raise UnprocessableEntity(f"field {name!r} must be {_EXPECTED[name]}") from None
    for name in decoded.__struct_fields__:
        value = getattr(decoded, name)
        if isinstance(value, str) and "\x00" in value:
            raise UnprocessableEntity(f"field {name!r} must not contain NUL characters")
        if isinstance(value, list) and any("\x00" in item for item in value):
            raise UnprocessableEntity(f"field {name!r} must be a list of strings")
    return decoded


_EXPECTED: Final = {
    "username": "a string",
    "password": "a string",
    "email": "a string",
    "role": "a string",
    "permissions": "a list of strings",
    "group_permissions": "a list of strings",
    "favorite_spaces": "a list of strings",
    "active": "a boolean",
}


def _unique(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(dict.fromkeys(values))  # de-duplicated, first-seen order


# -- routes -----------------------------------------------------------------------------------------------------
@blueprint.post("/scouter/user")
@documented(
    tags=["users"],
    security=BEARER_OR_BOOTSTRAP,
    body=CreateUserRequest,
    responses={**BODY_ERRORS, 200: CreateUserResponse, 409: ErrorBody},
)
@guarded(Requirement.admin())
async def create_user() -> Response:
    """Create a user (admin group, or the bootstrap key); answer with its four recovery codes, shown once."""
    request = _decoded(await json_object(), CreateUserRequest)
    username, password, email, role, active = (
        request.username,
        request.password,
        request.email,
        request.role,
        request.active,
    )
    permissions, group_permissions = _unique(request.permissions), _unique(request.group_permissions)

    ctx = context()
    if await users.get_user(ctx.db, username) is not None:
        return struct_response(ErrorBody(error="User already exists"), 409)
    password_hash = await users.off_loop(hash_password, password)
    codes, code_hashes = await users.off_loop(new_recovery_codes, 4)
    new = users.NewUser(
        username=username,
        email=email,
        password_hash=password_hash,
        recovery_hashes=code_hashes,
        permissions=("read:all",) if permissions is None else permissions,
        group_permissions=("user",) if group_permissions is None else group_permissions,
        role="user" if role is None else role,
        active=True if active is None else active,
    )
    outcome = await users.create_user(ctx.db, new)
    if outcome is users.Created.USERNAME_TAKEN:
        return struct_response(ErrorBody(error="User already exists"), 409)
    if outcome is users.Created.EMAIL_TAKEN:
        return struct_response(ErrorBody(error="Email already exists"), 409)
    created = await users.get_user(ctx.db, username)
    if created is None:  # deleted in the instant since the insert
        return struct_response(ErrorBody(error="Failed to create user"), 500)
    log.info("user %r created by %r", username, identity().username)
    return struct_response(
        CreateUserResponse(user=created.response(), recovery_codes=list(codes), message=RECOVERY_MESSAGE)
    )


@blueprint.get("/scouter/user")
@documented(tags=["users"], security=BEARER, responses={**GUARD_ERRORS, 200: UserList})
@guarded(Requirement.admin())
async def list_users() -> Response:
    """Every user (admin group only)."""
    return struct_response(UserList(users=[user.response() for user in await users.list_users(context().db)]))


@blueprint.get("/scouter/user/<username>")
@documented(tags=["users"], security=BEARER, responses={**GUARD_ERRORS, 200: UserResponse, 404: ErrorBody})
@guarded(Requirement.admin_or_self())
async def get_user(username: str) -> Response:
    """One user (admin group, or the user themself)."""
    user = await users.get_user(context().db, username) if _storable(username) else None
    if user is None:
        return struct_response(ErrorBody(error="User not found"), 404)
    return struct_response(user.response())


@blueprint.put("/scouter/user/<username>")
@documented(
    tags=["users"],
    security=BEARER,
    body=UpdateUserRequest,
    responses={**BODY_ERRORS, 200: UserResponse, 404: ErrorBody, 409: ErrorBody},
)
@guarded(Requirement.admin_or_self())
async def update_user(username: str) -> Response:
    """Change a user's password or favourite spaces; admins may also change permissions, groups and `active`.

    A new password, changed permissions or groups, and a deactivation delete the stored refresh token."""
    request = _decoded(await json_object(), UpdateUserRequest)
    password, active = request.password, request.active
    favorite_spaces = _unique(request.favorite_spaces)
    permissions, group_permissions = _unique(request.permissions), _unique(request.group_permissions)
    if not is_admin(identity()):
        # As upstream, a non-admin's values for these fields are silently ignored.
        permissions = group_permissions = active = None

    ctx = context()
    current = await users.get_user(ctx.db, username) if _storable(username) else None
    if current is None:
        return struct_response(ErrorBody(error="User not found"), 404)
    password_hash = None if password is None else await users.off_loop(hash_password, password)
    # What a token was issued against no longer holds: no token of the user renews any more (log in again).
    revoke_refresh = (
        password is not None
        or active is False
        or (permissions is not None and set(permissions) != set(current.permissions))
        or (group_permissions is not None and set(group_permissions) != set(current.group_permissions))
    )
    try:
        updated = await users.update_user(
            ctx.db,
            username,
            password_hash=password_hash,
            permissions=permissions,
            group_permissions=group_permissions,
            active=active,
            favorite_spaces=favorite_spaces,
            revoke_refresh=revoke_refresh,
        )
    except users.LastAdmin:
        return struct_response(ErrorBody(error="Cannot remove the admin rights of the last admin user"), 409)
    ctx.auth_cache.forget(username)
    if updated is None:
        return struct_response(ErrorBody(error="User not found"), 404)
    log.info("user %r updated by %r", username, identity().username)
    return struct_response(updated.response())


@blueprint.delete("/scouter/user/<username>")
@documented(tags=["users"], security=BEARER, responses={**GUARD_ERRORS, 200: ScouterResponse, 409: ErrorBody})
@guarded(Requirement.admin())
async def delete_user(username: str) -> Response:
    """Delete a user (admin group only), unless it is the last active user of the admin group."""
    ctx = context()
    # deleting a user that does not exist succeeds, as upstream; one that cannot exist is not asked about
    outcome = await users.delete_user(ctx.db, username) if _storable(username) else users.Deleted.DELETED
    ctx.auth_cache.forget(username)
    if outcome is users.Deleted.LAST_ADMIN:
        return struct_response(ErrorBody(error="Cannot delete the last admin user"), 409)
    log.info("user %r deleted by %r", username, identity().username)
    return struct_response(ScouterResponse(status="success", message=f"User {username} deleted successfully"))
