"""The per-process auth cache: tokens until their expiry, user rows for a short TTL or until changed here."""

from __future__ import annotations

import pytest

from actors.http._auth_cache import AuthCache
from actors.users import UserRow
from scouter.auth import LEEWAY_SECONDS, REFRESH_TTL_SECONDS, Identity, TokenError, mint_access

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def row(name: str, permissions: tuple[str, ...]) -> UserRow:
    return UserRow(name, f"{name}@x", True, "user", permissions, ("user",), (), "hash", None, None)


def test_a_verified_token_is_reused_until_it_expires() -> None:
    """The second check of a token is a cache hit; past exp + leeway it reports expired, without re-verifying."""
    cache = AuthCache()
    token = mint_access(Identity("ann", ("read:all",)), SECRET, 1000.0)
    assert (Identity("ann", ("read:all",)), False) == cache.verify(token, SECRET, 1000.0)
    assert (Identity("ann", ("read:all",)), False) == cache.verify(token, "another secret would fail", 1001.0)
    assert cache.verify(token, SECRET, 1000.0 + 3600 + LEEWAY_SECONDS + 1)[1]


def test_a_bad_token_is_never_cached() -> None:
    """A forged token fails every time."""
    cache = AuthCache()
    forged = mint_access(Identity("ann"), "some-other-secret-that-is-long-enough-xx", 1000.0)
    for _ in range(2):
        with pytest.raises(TokenError):
            cache.verify(forged, SECRET, 1000.0)


async def test_user_rows_live_for_the_ttl_or_until_forgotten() -> None:
    """Within the TTL the row is not read again; after it, or after forget(), it is."""
    now = [0.0]
    cache = AuthCache(user_ttl=2.0, clock=lambda: now[0])
    reads: list[str] = []
    current = {"ann": row("ann", ("read:all",))}

    async def load(db: object, name: str) -> UserRow | None:
        reads.append(name)
        return current.get(name)

    assert current["ann"] == await cache.user(None, "ann", load)  # type: ignore[arg-type]
    current["ann"] = row("ann", ())
    now[0] = 1.5
    assert ("read:all",) == (await cache.user(None, "ann", load)).permissions  # type: ignore[arg-type,union-attr]
    now[0] = 2.5
    assert () == (await cache.user(None, "ann", load)).permissions  # type: ignore[arg-type,union-attr]
    del current["ann"]
    cache.forget("ann")
    assert await cache.user(None, "ann", load) is None  # type: ignore[arg-type]
    assert ["ann", "ann", "ann"] == reads


def test_renewable_follows_the_tokens_issue_time() -> None:
    """A cached token stays renewable until the refresh lifetime after its issue (plus the leeway), then not."""
    cache = AuthCache()
    token = mint_access(Identity("ann"), SECRET, 1000.0)
    assert cache.renewable(token, SECRET, 1000.0 + REFRESH_TTL_SECONDS)
    assert not cache.renewable(token, SECRET, 1000.0 + REFRESH_TTL_SECONDS + LEEWAY_SECONDS + 1)
