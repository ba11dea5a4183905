"""Login throttling policy: exponential back-off after repeated failures, per user name and client address and
per client address alone (`LoginLimits`).

Pure bookkeeping: the caller passes a monotonic `now` and decides what to answer (e.g. 429 with `Retry-After`).
The delay is capped, never a lock: an admin whose name is being guessed can always log in once the (at most
`max_delay`) wait has passed, and refused attempts do not count as failures, so waiting is always enough.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

# 2**64 s is far beyond any sensible cap; bounding the exponent keeps the float maths from overflowing.
_MAX_EXPONENT = 64


@attrs.frozen
class _Failures:
    count: int
    last: float  # monotonic time of the latest failure


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.define
class LoginThrottle:
    """Tracks consecutive login failures per user name and says how long the next attempt must wait.

    After `free_failures` consecutive failures the next attempt waits `base_delay` seconds after the last failure,
    doubling with each further failure up to `max_delay`. A success forgets the name; so does `forget_after`
    seconds without failures. At most `max_tracked` names are kept: the one whose last failure is oldest goes first
    (a flood of names can therefore reset someone's count early; the bound on memory is worth more).
    """

    free_failures: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    base_delay: float = attrs.field(default=1.0, validator=_positive)
    max_delay: float = attrs.field(default=60.0, validator=_positive)
    forget_after: float = attrs.field(default=900.0, validator=_positive)
    max_tracked: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    # Ordered by the time of the last failure, oldest first: pruning and eviction pop from the front.
    _entries: OrderedDict[str, _Failures] = attrs.field(init=False, factory=OrderedDict, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.base_delay:
            raise ValueError(f"max_delay ({self.max_delay}) must be >= base_delay ({self.base_delay})")
        if self.forget_after < self.max_delay:
            # Otherwise an entry could be forgotten before its delay ends, silently shortening it.
            raise ValueError(f"forget_after ({self.forget_after}) must be >= max_delay ({self.max_delay})")

    def retry_after(self, username: str, now: float) -> float:
        """Seconds until `username` may try again; 0.0 means the attempt is allowed now."""
        entry = self._live_entry(username, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self._delay(entry.count) - now)

    def allows(self, username: str, now: float) -> bool:
        """True when `username` may attempt a login at `now`."""
        return self.retry_after(username, now) == 0.0

    def record_failure(self, username: str, now: float) -> None:
        """Count a failed login (wrong password or unknown user) at `now`."""
        self._prune(now)
        entry = self._entries.pop(username, None)
        count = 1 if entry is None else entry.count + 1
        self._entries[username] = _Failures(count, now)
        while len(self._entries) > self.max_tracked:
            self._entries.popitem(last=False)

    def record_success(self, username: str) -> None:
        """Forget the failures of `username` after a successful login."""
        self._entries.pop(username, None)

    def __len__(self) -> int:
        """How many user names are tracked (expired ones may linger until the next failure prunes them)."""
        return len(self._entries)

    def _delay(self, count: int) -> float:
        if count < self.free_failures:
            return 0.0
        exponent = min(count - self.free_failures, _MAX_EXPONENT)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def _live_entry(self, username: str, now: float) -> _Failures | None:
        entry = self._entries.get(username)
        if entry is not None and now - entry.last >= self.forget_after:
            del self._entries[username]
            return None
        return entry

    def _prune(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.last < self.forget_after:
                break
            self._entries.popitem(last=False)


def _per_address() -> LoginThrottle:
    # Password spraying tries one or two passwords on many names: more free failures than one user gets (an
    # office behind one NAT mistypes too), then the same back-off.
    return LoginThrottle(free_failures=20)


@attrs.define
class LoginLimits:
    """Login throttling an attacker cannot turn against the owner of an account.

    Failures count per (user name, client address), so guessing a user's password from one address throttles that
    address only, and the owner, elsewhere, still logs in at once; and per client address alone, so trying a few
    passwords on many names (spraying) from one address is throttled too. A success forgets the failures of that
    user at that address, never those of the address: one valid account must not reset a sprayer's count.
    """

    per_user: LoginThrottle = attrs.Factory(LoginThrottle)
    per_address: LoginThrottle = attrs.Factory(_per_address)

    @staticmethod
    def _key(username: str, address: str) -> str:
        return f"{address}\x00{username}"  # NUL: in neither a header value nor an address

    def retry_after(self, username: str, address: str, now: float) -> float:
        """Seconds until `username` may try again from `address`; 0.0 means now."""
        return max(
            self.per_user.retry_after(self._key(username, address), now), self.per_address.retry_after(address, now)
        )

    def record_failure(self, username: str, address: str, now: float) -> None:
        """Count a failed login (wrong password or unknown user)."""
        self.per_user.record_failure(self._key(username, address), now)
        self.per_address.record_failure(address, now)

    def record_success(self, username: str, address: str) -> None:
        """Forget the failures of `username` at `address`."""
        self.per_user.record_success(self._key(username, address))
