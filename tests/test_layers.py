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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports, anywhere in it (TYPE_CHECKING blocks and functions too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module if node.level == 0 else ".".join(p for p in (base, node.module) if p)
            if module is None:
                continue
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import users`
    return found & known - {name}


def test_no_import_cycles_inside_actors() -> None:
    """No module of actors/ imports, even indirectly or only for type checking, a module that imports it back:
    a cycle makes the import order matter and hides which of the two is the lower layer."""
    paths = {_module_name(p): p for p in (ROOT / "actors").rglob("*.py")}
    known = set(paths)
    graph = {name: _imported_modules(path, known) for name, path in paths.items()}
    # A package imports its own modules to re-export them; that is not a dependency of theirs on it.
    graph = {name: {m for m in deps if not m.startswith(name + ".")} for name, deps in graph.items()}
    cycles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert [] == cycles
