"""Run every benchmark: each `tests/bench/bench_*.py` as `python -m tests.bench.<name>`, in name order.

Each runs in its own process, exactly as when started alone (with its own defaults), so one bench's loops, pools or
servers never skew another's figures.

    python -m tests.bench              # all of them
    python -m tests.bench http_ingest  # only those whose name contains one of the arguments
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import tests.bench

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__) if m.name.startswith("bench_"))
    if argv:
        names = [name for name in names if any(word in name for word in argv)]
    failed = []
    for name in names:
        print(f"=== {name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"tests.bench.{name}"], cwd=ROOT)
        print(f"=== {name}: exit {code}, {time.monotonic() - started:.0f} s\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
