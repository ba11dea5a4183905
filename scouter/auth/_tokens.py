"""Access and refresh JWTs (HS256), and how refresh tokens are stored.

Tokens match upstream byte for byte in shape: header `{"typ":"JWT","alg":"HS256"}`, claims in the order
`sub, exp, permissions, group_permissions, salt`. The key is the raw UTF-8 bytes of the configured secret.

Time is always passed in as `now` (seconds since the epoch) so tests need no clock. PyJWT only knows the wall
clock, so its time checks are switched off and `exp` (and `nbf`, which our tokens never carry) are checked here,
with upstream's 60 s leeway: a token is expired once `now > exp + 60`, as in Rust's `jsonwebtoken`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt

from ._identity import Identity
from ._random import random_alphanumeric

ACCESS_TTL_SECONDS = 3600
REFRESH_TTL_SECONDS = 86400
LEEWAY_SECONDS = 60
SALT_LENGTH = 16
#: An expired access token renews (while its user holds a valid stored refresh token) only this long after it was
#: issued, i.e. within the refresh token's lifetime: a token stolen long ago cannot be revived by the user's session.
MAX_RENEWABLE_AGE_SECONDS = REFRESH_TTL_SECONDS

_ALGORITHM = "HS256"
_DECODE_OPTIONS: Any = {
    # Time checks happen in _check_times against `now`, and `sub` is checked with the other claims in _identity;
    # signature, algorithm and the remaining registered claims (aud, iss, jti) keep PyJWT's defaults.
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_sub": False,
}


class TokenError(Exception):
    """A token failed validation; `reason` says why (safe to log, never shown to clients by upstream)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mint_access(identity: Identity, secret: str | bytes, now: float) -> str:
    """Return an access token for `identity`, valid for one hour from `now`."""
    return _mint(identity, secret, now, ACCESS_TTL_SECONDS)


def mint_refresh(identity: Identity, secret: str | bytes, now: float) -> str:
    """Return a refresh token for `identity`, valid for 24 hours from `now`, signed with the refresh secret."""
    return _mint(identity, secret, now, REFRESH_TTL_SECONDS)


def verify_access(token: str, secret: str | bytes, now: float) -> Identity:
    """Return the identity in a valid, unexpired access token; raise `TokenError` otherwise."""
    identity, expired = _decode(token, secret, now)
    if expired:
        raise TokenError("token expired")
    return identity


def verify_access_allow_expired(token: str, secret: str | bytes, now: float) -> tuple[Identity, bool]:
    """Return the identity in a correctly signed access token and whether it has expired (beyond the leeway).

    Only the expiry is forgiven: signature, algorithm, claims and `nbf` are checked as in `verify_access`. This is
    the refresh path (§2.2 [PY]); the caller must still require a valid stored refresh token for the user.
    """
    return _decode(token, secret, now)


def renewable_until(valid_until: float) -> float:
    """The last moment a token may be renewed, given the deadline `verify_access_deadline` returns for it.

    Tokens carry no `iat` (upstream's claims), but every access token is minted with `exp = issue + ACCESS_TTL`.
    """
    return valid_until - ACCESS_TTL_SECONDS + MAX_RENEWABLE_AGE_SECONDS


def issued_at(valid_until: float) -> float:
    """When a token was issued (to the second), given the deadline `verify_access_deadline` returns for it."""
    return valid_until - LEEWAY_SECONDS - ACCESS_TTL_SECONDS


def verify_access_renewable(token: str, secret: str | bytes, now: float) -> Identity:
    """The identity in a correctly signed access token, expired or not, that is young enough to renew
    (`MAX_RENEWABLE_AGE_SECONDS`); `TokenError` otherwise. The caller must still require a stored refresh token."""
    identity, valid_until = verify_access_deadline(token, secret, now)
    if now > renewable_until(valid_until):
        raise TokenError("token too old to renew")
    return identity


def verify_refresh(token: str, refresh_secret: str | bytes, now: float) -> Identity:
    """Return the identity in a valid, unexpired refresh token; raise `TokenError` otherwise."""
    return verify_access(token, refresh_secret, now)


def hash_refresh_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a refresh token is stored.

    Not argon2: a password hash must be slow because passwords are guessable. A refresh token is an HMAC-SHA256
    over claims that include 16 random alphanumerics (~95 bits), so there is nothing to guess; a fast hash is as
    strong here and keeps the refresh path free of a key derivation costing tens of milliseconds. Being deterministic,
    it could also be indexed.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def refresh_token_matches(token: str, stored_hash: str | None) -> bool:
    """True when `token` hashes to `stored_hash`, compared in constant time; a missing hash never matches."""
    if stored_hash is None:
        return False
    return hmac.compare_digest(hash_refresh_token(token).encode("ascii"), stored_hash.encode("utf-8"))


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        # An empty HMAC key signs tokens anyone can forge; refuse rather than mint them.
        raise ValueError("the token secret is empty")
    return key


def _mint(identity: Identity, secret: str | bytes, now: float, ttl: int) -> str:
    claims = {
        "sub": identity.username,
        "exp": int(now) + ttl,
        "permissions": list(identity.permissions),
        "group_permissions": list(identity.group_permissions),
        "salt": random_alphanumeric(SALT_LENGTH),  # makes every token unique, as upstream
    }
    # sort_headers=False keeps upstream's header order {"typ":"JWT","alg":"HS256"}.
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM, sort_headers=False)


def verify_access_deadline(token: str, secret: str | bytes, now: float) -> tuple[Identity, float]:
    """A correctly signed token's identity and the moment it stops being valid (``exp`` plus the leeway).

    Expiry itself is not judged here, so the result can be cached by the token until that moment.
    """
    claims = _verified_claims(token, secret)
    _check_times(claims, now)
    return _identity(claims), float(_expect_int(claims, "exp") + LEEWAY_SECONDS)


def _decode(token: str, secret: str | bytes, now: float) -> tuple[Identity, bool]:
    claims = _verified_claims(token, secret)
    identity = _identity(claims)
    return identity, _check_times(claims, now)


def _verified_claims(token: str, secret: str | bytes) -> dict[str, Any]:
    key = _key(secret)
    if not isinstance(token, str):
        raise TokenError("token is not a string")
    try:
        # `algorithms` is the allow-list: `none`, HS384/512 and asymmetric algorithms are refused by PyJWT.
        claims = jwt.decode(token, key, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidAlgorithmError:
        raise TokenError("algorithm not allowed") from None
    except jwt.InvalidSignatureError:
        raise TokenError("invalid signature") from None
    except jwt.DecodeError as exc:
        raise TokenError(f"malformed token: {exc}") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    return claims


def _identity(claims: dict[str, Any]) -> Identity:
    username = _claim(claims, "sub")
    if not isinstance(username, str):
        raise TokenError("claim 'sub' must be a string")
    _expect_int(claims, "exp")
    salt = _claim(claims, "salt")
    if not isinstance(salt, str):
        raise TokenError("claim 'salt' must be a string")
    return Identity(username, _strings(claims, "permissions"), _strings(claims, "group_permissions"))


def _check_times(claims: dict[str, Any], now: float) -> bool:
    """Raise if `nbf` is in the future; return whether `exp` has passed (both with the leeway)."""
    if "nbf" in claims and now + LEEWAY_SECONDS < _expect_int(claims, "nbf"):
        raise TokenError("token not yet valid")
    return now > _expect_int(claims, "exp") + LEEWAY_SECONDS


def _claim(claims: dict[str, Any], name: str) -> Any:
    if name not in claims:
        raise TokenError(f"missing claim {name!r}")
    return claims[name]


def _expect_int(claims: dict[str, Any], name: str) -> int:
    value = _claim(claims, name)
    # Upstream deserialises times into `usize`: floats, strings and booleans are not numbers of seconds.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenError(f"claim {name!r} must be an integer")
    return value


def _strings(claims: dict[str, Any], name: str) -> tuple[str, ...]:
    value = _claim(claims, name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenError(f"claim {name!r} must be a list of strings")
    return tuple(value)
