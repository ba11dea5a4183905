"""Every benchmark runs, at smoke sizes, as `make bench` would run it: so the benches cannot rot.

Each `tests/bench/bench_*.py` runs as `python -m tests.bench.<name>` with SCOUTER_BENCH_SMOKE=1 (tiny sizes;
correctness checks enforced, throughput targets not). All start at once (they spend most of their time waiting on
servers; bench_queues as two runs, one per broker), then each test waits for its own: exit 0, the server it
measured on named, and every line it promises.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import attrs
import pytest

import tests.bench

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__) if m.name.startswith("bench_"))
#: Runs by id: the bench module and its arguments.
RUNS = {name: (name, []) for name in BENCHES if name != "bench_queues"} | {
    "bench_queues-kafka": ("bench_queues", ["--only", "kafka"]),
    "bench_queues-rabbitmq": ("bench_queues", ["--only", "rabbitmq"]),
}
#: The lines each bench must print: one per figure that has a same-run baseline (or a target without one).
PROMISED = {
    "bench_archive": ["cold cache, local store:", "ratio cold local / PostgreSQL", "ratio cold S3 / PostgreSQL",
                      "ratio cold S3 / cold local", "ratio cached / PostgreSQL"],
    "bench_decode": ["ratio 0.25 decode + file / 0.6.4 decode:"],
    "bench_drift": ["points:", "due profiles drained:", "ratio SPC check raw / through summaries",
                    "ratio SPC check through summaries, 10x rows / 1x rows", "ratio custom check rows / rollups",
                    "ratio psi check rows / rollups", "ratio custom check through rollups, 10x rows / 1x rows",
                    "ratio psi check through rollups, 10x rows / 1x rows"],
    "bench_http_ingest": ["ratio ingest / healthcheck req/s:", "ack p99 at 50% of max rate:",
                          "ratio bulk records/s / raw COPY:"],
    "bench_queues-kafka": ["ratio Kafka ours / bare library under trio-asyncio:",
                           "ratio Kafka ours / bare library under asyncio:", "ratio Kafka ours / raw COPY",
                           "Kafka peak RSS, 40x / 10x backlog:"],
    "bench_queues-rabbitmq": ["ratio RabbitMQ ours / bare library under trio-asyncio:",
                              "ratio RabbitMQ ours / bare library under asyncio:", "ratio RabbitMQ ours / raw COPY",
                              "RabbitMQ peak RSS, 40x / 10x backlog:"],
    "bench_rollups": ["ratio binned 30 days 1000 points, rows / rollups",
                      "ratio binned 30 days 720 points, rows / rollups", "ratio custom check rows / rollups",
                      "ratio binned 720 points through rollups, 10x rows / 1x rows"],
    "bench_writer": ["ratio writer / raw COPY sequential:", "ratio writer / raw COPY merged alike (fair):"],
}  # fmt: skip
#: Benches that measure no database (pure decoding), so they name no PostgreSQL server.
WITHOUT_DATABASE = {"bench_decode"}
TIMEOUT = 300


@attrs.define
class Run:
    process: subprocess.Popen[bytes]
    output: IO[bytes]

    def wait(self) -> tuple[int, str]:
        try:
            code = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -9
        self.output.seek(0)
        return code, self.output.read().decode(errors="replace")


@pytest.fixture(scope="module")
def runs(postgres_dsn: str, rabbitmq_url: str) -> Iterator[dict[str, Run]]:
    """Every bench started at once, on the session's PostgreSQL and RabbitMQ (Kafka: each starts its own tansu)."""
    env = {**os.environ, "SCOUTER_BENCH_SMOKE": "1", "SCOUTER_TEST_DATABASE_URI": postgres_dsn,
           "SCOUTER_TEST_RABBITMQ_URL": rabbitmq_url}  # fmt: skip
    env.pop("SCOUTER_BENCH_DATABASE_URI", None)
    started: dict[str, Run] = {}
    try:
        for run_id, (module, args) in RUNS.items():
            output = tempfile.TemporaryFile()
            process = subprocess.Popen([sys.executable, "-m", f"tests.bench.{module}", *args], cwd=ROOT, env=env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
            started[run_id] = Run(process, output)
        yield started
    finally:
        deadline = time.monotonic() + 10
        for run in started.values():
            if run.process.poll() is None:
                run.process.terminate()
                run.process.wait(max(0.1, deadline - time.monotonic()))
            run.output.close()


def test_every_bench_is_run_and_promises_its_lines() -> None:
    assert sorted({module for module, _ in RUNS.values()}) == BENCHES
    assert sorted(PROMISED) == sorted(RUNS)


@pytest.mark.parametrize("run_id", sorted(RUNS))
def test_bench_runs_at_smoke_sizes(runs: dict[str, Run], run_id: str) -> None:
    code, output = runs[run_id].wait()
    assert code == 0, output[-4000:]
    if run_id not in WITHOUT_DATABASE:
        server = [line for line in output.splitlines() if line.startswith("PostgreSQL ") and "fsync=" in line]
        assert server, output[-4000:]  # the server measured on, and its durability settings
    missing = [line for line in PROMISED[run_id] if line not in output]
    assert missing == [], output[-4000:]


@pytest.mark.postgres
def test_benches_measure_on_durable_settings_or_say_they_are_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test server (fsync off) is labelled NOT DURABLE when picked explicitly; a full run offered it starts a
    private server with production's settings instead and says so."""
    from tests import services
    from tests.bench import common

    monkeypatch.setattr(common, "SMOKE", False)
    with services.private_postgres() as throwaway:
        settings = common.server_settings(throwaway.dsn)
        assert not settings.durable
        assert "fsync=off" in settings.describe()
        assert "NOT DURABLE" in settings.describe()

        monkeypatch.setenv(common.ENV_DATABASE_URI, throwaway.dsn)
        assert throwaway.dsn == common.bench_postgres()
        assert "NOT DURABLE" in capsys.readouterr().out

        monkeypatch.delenv(common.ENV_DATABASE_URI)
        monkeypatch.setattr(common, "ensure_postgres", lambda: throwaway.dsn)
        try:
            chosen = common.bench_postgres()
            assert chosen != throwaway.dsn
            assert common.server_settings(chosen).durable
            printed = capsys.readouterr().out.splitlines()
            assert printed[-1].endswith(": durable")
        finally:
            if common._durable_server is not None:
                common._durable_server.close()
                monkeypatch.setattr(common, "_durable_server", None)
