"""The three floors: nothing imports upward, the domain has no trio or I/O, the runtime is generic."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"supervisors", "actors", "scouter", "config"}
#: What each package may import of ours.
ALLOWED = {
    "config": set(),
    "scouter": set(),
    "actors": {"scouter", "config"},
    "supervisors": {"actors", "config"},
}
RUNTIME = ("_spec.py", "_monitor.py", "_supervisor.py", "_signals.py")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_nothing_imports_upward(package: str) -> None:
    """Each package imports only the floors below it (and itself)."""
    for path in (ROOT / package).rglob("*.py"):
        ours = (imported_roots(path) & OURS) - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[package])}"


def test_domain_stays_pure() -> None:
    """The domain package never imports trio, asyncio or an I/O library."""
    forbidden = re.compile(r"^\s*(import|from) (trio|trio_asyncio|asyncio|asyncpg|aiokafka|aio_pika|httpx|obstore)\b",
                           re.M)  # fmt: skip
    for path in (ROOT / "scouter").rglob("*.py"):
        assert not forbidden.search(path.read_text()), path


def test_supervision_runtime_is_generic() -> None:
    """The runtime modules of supervisors/ import nothing of ours: they could be published alone."""
    for name in RUNTIME:
        path = ROOT / "supervisors" / name
        assert not (imported_roots(path) & OURS), path


def test_one_module_builds_the_tree() -> None:
    """Only the composition root and the CLI wire actors in."""
    wiring = {p.name for p in (ROOT / "supervisors").glob("*.py") if "actors" in imported_roots(p)}
    assert wiring <= {"tree.py", "main.py"}
