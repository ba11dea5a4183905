import string

import argon2
import pytest

from scouter.auth import RECOVERY_CODE_LENGTH, hash_password, new_recovery_codes, verify_password

UPSTREAM_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


def _upstream_hasher() -> argon2.PasswordHasher:
    """argon2-cffi configured as upstream's Rust `password_auth` (argon2 crate defaults)."""
    return argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=argon2.Type.ID
    )


def test_hash_is_upstream_argon2id_phc_string() -> None:
    """Hashes are argon2id v19 PHC strings with upstream's parameters, a 16-byte salt and a 32-byte digest."""
    stored = hash_password("admin")
    salt, digest = stored.removeprefix(UPSTREAM_PREFIX).split("$")
    # unpadded base64: 16 bytes -> 22 characters, 32 bytes -> 43 characters
    assert (True, 22, 43) == (stored.startswith(UPSTREAM_PREFIX), len(salt), len(digest))


def test_password_round_trip() -> None:
    """The right password verifies against its hash and a wrong one does not."""
    stored = hash_password("correct horse")
    assert (True, False, False) == (
        verify_password("correct horse", stored),
        verify_password("correct horsE", stored),
        verify_password("", stored),
    )


def test_hashes_are_salted() -> None:
    """Hashing the same password twice gives different strings."""
    assert hash_password("admin") != hash_password("admin")


def test_upstream_style_hash_verifies() -> None:
    """A hash made by argon2-cffi with upstream's parameters verifies through verify_password."""
    stored = _upstream_hasher().hash("admin")
    assert stored.startswith(UPSTREAM_PREFIX)
    assert (True, False) == (verify_password("admin", stored), verify_password("guest", stored))


def test_our_hash_verifies_with_argon2_cffi() -> None:
    """argon2-cffi, configured as upstream, accepts our hashes (so the Rust server could read them back)."""
    assert _upstream_hasher().verify(hash_password("admin"), "admin")


def test_hash_with_other_parameters_verifies() -> None:
    """Parameters are read from the stored string, so argon2i or costlier argon2id hashes still verify."""
    other = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2, type=argon2.Type.I).hash("pw")
    assert other.startswith("$argon2i$v=19$m=8192,t=1,p=2$")
    assert verify_password("pw", other)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "admin",
        "garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$abc$def",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        "$2b$12$abcdefghijklmnopqrstuuQ7Pj0ZKzLGZVx8iqOQ7Ol0i2uWvW1aO",
        "$pbkdf2-sha256$29000$abc$def",
    ],
)
def test_malformed_stored_hash_is_false(stored: str | None) -> None:
    """A missing, malformed or foreign stored hash makes verification answer False instead of raising."""
    assert False is verify_password("admin", stored)


def test_truncated_hash_is_false() -> None:
    """A real hash cut short (e.g. a damaged column) makes verification answer False."""
    assert False is verify_password("admin", hash_password("admin")[:-10])


def test_recovery_codes() -> None:
    """Four distinct 16-character alphanumeric codes come with argon2id hashes that verify only their own code."""
    codes, hashes = new_recovery_codes()
    alphabet = set(string.ascii_letters + string.digits)
    assert 4 == len(set(codes))
    assert [RECOVERY_CODE_LENGTH] * 4 == [len(code) for code in codes]
    assert all(set(code) <= alphabet for code in codes)
    assert [True] * 4 == [verify_password(code, stored) for code, stored in zip(codes, hashes, strict=True)]
    assert False is verify_password(codes[0], hashes[1])
    assert all(stored.startswith(UPSTREAM_PREFIX) for stored in hashes)


def test_recovery_code_count() -> None:
    """The count is honoured, including one (each default user) and zero."""
    assert [(1, 1), (0, 0)] == [tuple(map(len, new_recovery_codes(n))) for n in (1, 0)]


def test_negative_recovery_code_count_is_refused() -> None:
    """A negative count is a programming error."""
    with pytest.raises(ValueError, match=">= 0"):
        new_recovery_codes(-1)
