"""Password and recovery-code hashing: argon2id PHC strings, compatible with upstream's stored hashes.

Upstream hashes with the Rust `password_auth` crate, i.e. `argon2` defaults: argon2id, version 19, m=19456 KiB,
t=2, p=1, 16-byte salt, 32-byte output: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. passlib's argon2 handler
defaults differ (m=65536, t=3, p=4), so the parameters are pinned here. Verification reads the parameters from
the stored string, so hashes made with other parameters still verify.
"""

from __future__ import annotations

from passlib.context import CryptContext

from ._random import random_alphanumeric

RECOVERY_CODE_LENGTH = 16

_CONTEXT = CryptContext(
    schemes=["argon2"],
    argon2__type="id",
    argon2__memory_cost=19456,
    argon2__rounds=2,  # passlib's name for argon2's time_cost
    argon2__parallelism=1,
    argon2__salt_size=16,
    argon2__digest_size=32,
)


def hash_password(password: str) -> str:
    """Return the argon2id PHC string for `password` (a fresh random salt each call)."""
    stored: str = _CONTEXT.hash(password)  # passlib ships no type hints
    return stored


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True when `password` matches `stored_hash`; a missing, malformed or unknown hash is simply False."""
    if not stored_hash:
        return False
    try:
        return bool(_CONTEXT.verify(password, stored_hash))
    except (ValueError, TypeError):
        # passlib raises ValueError (UnknownHashError, malformed salt/params, over-long password) or TypeError
        # (wrong types); a login must answer "no" rather than 500.
        return False


def new_recovery_codes(n: int = 4) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return `(codes, hashes)`: `n` random 16-character alphanumeric codes and their argon2id hashes.

    The codes are shown to the user once; only the hashes are stored (`hashed_recovery_codes`).
    """
    if n < 0:
        raise ValueError(f"recovery code count must be >= 0, got {n}")
    codes = tuple(random_alphanumeric(RECOVERY_CODE_LENGTH) for _ in range(n))
    return codes, tuple(hash_password(code) for code in codes)
