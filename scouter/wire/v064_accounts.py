"""The scouter-ml 0.6.4 authentication and user shapes (server.md §2.1–§2.3), each declared once as a msgspec
struct. Answers marked ``forbid_unknown_fields`` list every key ever sent: a user never carries its password hash,
recovery codes or refresh token."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from msgspec import Meta, Struct

from scouter.wire.common import Text

__all__ = [
    "SHAPES",
    "CreateUserRequest",
    "CreateUserResponse",
    "LoginHeaders",
    "Token",
    "UpdateUserRequest",
    "UserList",
    "UserResponse",
    "Validated",
]


class LoginHeaders(Struct):
    """The credentials of `GET /scouter/auth/login`, as headers (ASCII only)."""

    username: Annotated[str, Meta(description="The user name (header `Username`).")]
    password: Annotated[str, Meta(description="The password (header `Password`).")]


class Token(Struct, forbid_unknown_fields=True):
    """A new access token (HS256 JWT, valid for an hour)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.c2ln"}]

    token: str


class Validated(Struct, forbid_unknown_fields=True):
    """The bearer token is valid."""

    is_authenticated: Literal[True]


class UserResponse(Struct, forbid_unknown_fields=True):
    """A user (never its password hash, recovery codes or refresh token)."""

    username: str
    email: str
    active: bool
    role: str
    permissions: list[str]
    group_permissions: list[str]
    favorite_spaces: list[str]


class UserList(Struct, forbid_unknown_fields=True):
    """Every user."""

    users: list[UserResponse]


#: Bounds that keep a user row storable: user names and e-mails are unique (one PostgreSQL B-tree row each, ~2.7 KB,
#: so at most 4 bytes x these characters), and argon2 hashing through passlib refuses passwords over 4,096 bytes.
UserName = Annotated[Text, Meta(min_length=1, max_length=128)]
Email = Annotated[Text, Meta(max_length=254)]  # RFC 5321's longest address
Password = Annotated[Text, Meta(max_length=1024)]


class CreateUserRequest(Struct):
    """A new user; unknown fields are ignored."""

    username: UserName
    password: Password
    email: Email
    permissions: Annotated[list[Text] | None, Meta(description='Default `["read:all"]`.')] = None
    group_permissions: Annotated[list[Text] | None, Meta(description='Default `["user"]`.')] = None
    role: Annotated[Text | None, Meta(description='Default `"user"`.')] = None
    active: Annotated[bool | None, Meta(description="Default `true`.")] = None


class CreateUserResponse(Struct, forbid_unknown_fields=True):
    """The new user and its four recovery codes, shown this once."""

    user: UserResponse
    recovery_codes: list[str]
    message: str


class UpdateUserRequest(Struct):
    """What to change; `permissions`, `group_permissions` and `active` are ignored unless an admin asks."""

    password: Password | None = None
    favorite_spaces: list[Text] | None = None
    permissions: list[Text] | None = None
    group_permissions: list[Text] | None = None
    active: bool | None = None


#: Every struct above, for the OpenAPI document's components.
SHAPES: Final = (
    LoginHeaders,
    Token,
    Validated,
    UserResponse,
    UserList,
    CreateUserRequest,
    CreateUserResponse,
    UpdateUserRequest,
)
