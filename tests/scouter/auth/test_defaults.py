import pytest

from scouter.auth import (
    BOOTSTRAP_IDENTITY,
    DEFAULT_SECRET,
    DefaultUser,
    bootstrap_grants,
    default_users,
    is_admin,
    short_secrets,
    uses_default_secrets,
)

STRONG = "a-strong-secret-that-is-long-enough-0123"


def test_default_secret_is_base64_of_descending_bytes() -> None:
    """The default secret is upstream's literal: base64 of bytes 31 down to 0."""
    import base64

    assert bytes(range(31, -1, -1)) == base64.b64decode(DEFAULT_SECRET)


def test_default_users() -> None:
    """Without configuration the admin and guest users match upstream's table (§2.3)."""
    assert (
        DefaultUser("admin", "admin", "admin", ("read:all", "write:all"), ("admin",), "admin", 1),
        DefaultUser("guest", "guest", "default", ("read:all", "write:all", "delete:all"), ("user",), "guest", 1),
    ) == default_users()


def test_default_admin_is_configurable() -> None:
    """SCOUTER_DEFAULT_USERNAME/PASSWORD rename the admin; the guest stays guest/guest."""
    admin, guest = default_users("root", "s3cret")
    assert [("root", "s3cret", "admin"), ("guest", "guest", "guest")] == [
        (admin.username, admin.password, admin.role),
        (guest.username, guest.password, guest.role),
    ]


def test_admin_named_guest_is_refused() -> None:
    """An admin called "guest" would collide with the guest user, so it is refused up front."""
    with pytest.raises(ValueError, match="guest"):
        default_users("guest", "x")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((None, None, None), ["SCOUTER_ENCRYPT_SECRET", "SCOUTER_REFRESH_SECRET", "SCOUTER_BOOTSTRAP_KEY"]),
        ((DEFAULT_SECRET, STRONG, STRONG), ["SCOUTER_ENCRYPT_SECRET"]),
        ((STRONG, DEFAULT_SECRET, STRONG), ["SCOUTER_REFRESH_SECRET"]),
        ((STRONG, STRONG, None), ["SCOUTER_BOOTSTRAP_KEY"]),
        ((STRONG, STRONG, STRONG), []),
    ],
)
def test_uses_default_secrets(values: tuple[str | None, str | None, str | None], expected: list[str]) -> None:
    """Each setting left unset or set to the built-in default is named, in a fixed order."""
    assert expected == uses_default_secrets(*values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((None, None), []),
        ((STRONG, "short"), ["SCOUTER_REFRESH_SECRET"]),
        (("", STRONG), ["SCOUTER_ENCRYPT_SECRET"]),
        (("x" * 31, "x" * 32), ["SCOUTER_ENCRYPT_SECRET"]),
        (("é" * 16, STRONG), []),
    ],
)
def test_short_secrets(values: tuple[str | None, str | None], expected: list[str]) -> None:
    """JWT secrets under 32 UTF-8 bytes are named; the (44-byte) default is not."""
    assert expected == short_secrets(*values)


@pytest.mark.parametrize(
    ("presented", "method", "path", "expected"),
    [
        (STRONG, "POST", "/scouter/user", True),
        (STRONG, "post", "/scouter/user", True),
        (STRONG, "GET", "/scouter/healthcheck", True),
        (STRONG, "GET", "/scouter/user", False),
        (STRONG, "DELETE", "/scouter/user/admin", False),
        (STRONG, "POST", "/scouter/profile", False),
        ("wrong", "POST", "/scouter/user", False),
        (None, "POST", "/scouter/user", False),
        ("", "POST", "/scouter/user", False),
    ],
)
def test_bootstrap_grants(presented: str | None, method: str, path: str, expected: bool) -> None:
    """The bootstrap key unlocks only POST to a /user path or /healthcheck, and only when it matches."""
    assert expected == bootstrap_grants(presented, STRONG, method=method, path=path)


def test_empty_bootstrap_key_matches_nothing() -> None:
    """An empty configured key does not match an empty header."""
    assert False is bootstrap_grants("", "", method="POST", path="/scouter/user")


def test_bootstrap_identity_is_admin() -> None:
    """A bootstrap request acts as user "bootstrap" with admin rights."""
    assert ("bootstrap", True) == (BOOTSTRAP_IDENTITY.username, is_admin(BOOTSTRAP_IDENTITY))
