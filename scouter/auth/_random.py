"""Random alphanumeric strings, as upstream's `rand::distr::Alphanumeric` (A-Z, a-z, 0-9)."""

from __future__ import annotations

import secrets
import string

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_alphanumeric(length: int) -> str:
    """Return `length` characters drawn from a CSPRNG."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))
