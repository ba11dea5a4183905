"""Per-process caches in front of the two costs every protected request used to pay: verifying the JWT's
signature, and reading the user row.

* Verified tokens are kept until the token's own expiry: an HMAC check cannot change its answer.
* User rows are kept for ``user_ttl`` seconds (default 2 s) and dropped at once when this process changes the
  user. So a permission revoked, or a user deleted, on another replica takes effect within that time — the price of
  not reading the user table on every ingest request (the row lookup was the largest cost of `POST /drift`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable

import attrs

from scouter.auth import Identity, issued_at, renewable_until, verify_access_deadline

from ..database import Database
from ..users import UserRow, get_user

MAX_TOKENS = 10_000
MAX_USERS = 10_000


@attrs.define
class AuthCache:
    user_ttl: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _tokens: collections.OrderedDict[str, tuple[Identity, float]] = attrs.Factory(collections.OrderedDict)
    _users: dict[str, tuple[UserRow | None, float]] = attrs.Factory(dict)

    def verify(self, token: str, secret: str, now: float) -> tuple[Identity, bool]:
        """(identity, expired) of a correctly signed token; TokenError otherwise (never cached)."""
        identity, deadline = self._verified(token, secret, now)
        return identity, now > deadline

    def renewable(self, token: str, secret: str, now: float) -> bool:
        """Whether a correctly signed token is young enough to renew (see `scouter.auth.renewable_until`)."""
        return now <= renewable_until(self._verified(token, secret, now)[1])

    def issued_before(self, token: str, secret: str, now: float, moment: float) -> bool:
        """Whether a correctly signed token was issued before ``moment``. Tokens carry their issue time to the
        second only (``exp``), so one issued in the second of ``moment`` counts as after it."""
        return issued_at(self._verified(token, secret, now)[1]) < int(moment)

    def _verified(self, token: str, secret: str, now: float) -> tuple[Identity, float]:
        cached = self._tokens.get(token)
        if cached is None:
            cached = verify_access_deadline(token, secret, now)
            self._tokens[token] = cached
            if len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        else:
            self._tokens.move_to_end(token)
        return cached

    async def user(self, db: Database, username: str, load: Callable[[Database, str], Awaitable[UserRow | None]]
                   = get_user) -> UserRow | None:  # fmt: skip
        now = self.clock()
        cached = self._users.get(username)
        if cached is not None and now - cached[1] < self.user_ttl:
            return cached[0]
        row = await load(db, username)
        if len(self._users) >= MAX_USERS:
            self._users.clear()  # crude but bounded; a full cache refills within one TTL
        self._users[username] = (row, now)
        return row

    def forget(self, username: str) -> None:
        """This process changed the user: the next request reads it again."""
        self._users.pop(username, None)
