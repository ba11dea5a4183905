import re
from pathlib import Path

import scouter.auth

PACKAGE = Path(scouter.auth.__file__).parent


def test_public_names_resolve() -> None:
    """Every name in __all__ is exported, and __all__ lists no duplicates."""
    assert [] == [name for name in scouter.auth.__all__ if not hasattr(scouter.auth, name)]
    assert len(set(scouter.auth.__all__)) == len(scouter.auth.__all__)


def test_auth_stays_pure() -> None:
    """The auth package imports no async runtime and no I/O modules."""
    pattern = re.compile(r"^\s*(import|from) (trio|asyncio|socket|os|pathlib|time|datetime|logging)\b", re.M)
    offenders = [path.name for path in PACKAGE.rglob("*.py") if pattern.search(path.read_text())]
    assert [] == offenders
