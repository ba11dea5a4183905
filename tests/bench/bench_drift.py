"""Drift engine figures on a real PostgreSQL (a fresh, migrated database with its daily partitions).

    python -m tests.bench.bench_drift [spc_rows] [profiles] [workers]

1. SPC checks through write-time summaries (`scouter.spc_plan`): `spc_rows` / 10 and then `spc_rows` points
   (default 1,000,000: 10 features x 100,000, over 12 hours) stored through the writer actor, which stores each
   transaction's summaries with its rows, in 100 transactions at either size. The check's read + evaluation through
   the summaries ÷ over every raw value of the window, at the larger size (target <= 0.1, printed as raw ÷ summaries
   >= 10; the findings must be equal), and through summaries at 10x the window's rows ÷ 1x (flat: the rows grow
   10x, the writer transactions holding them do not, as the writer's group commits grow with the load). Then the
   whole check, claim to reschedule (target <= 1 s). For the record, 10x rows in 10x as many transactions ÷ 1x: the
   summaries read grow with the transactions (not flat).
2. `profiles` due profiles (default 1,000; a third each SPC, PSI, custom, each with data) drained by `workers`
   pollers (default 4). Target <= 30 s.
3. The custom and PSI checks' aggregate query (in the check's snapshot, as the poller runs it) over a 12-hour window
   of `spc_rows` / 10 and then `spc_rows` records each: through the rollups (whole hours, edge minutes, partial
   minutes from rows) ÷ over the raw rows (target <= 0.1 at the larger size), and the rollup path at 10x the rows
   ÷ at 1x (flat).
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import trio
import trio_asyncio
from prometheus_client import CollectorRegistry

from actors._spc_reads import SummaryWindow, spc_columns, spc_judge, spc_window
from actors.alert_channel import AlertChannel, open_alert_channel
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.poller import ClaimedCheck, Poller, PollerConfig, _read_window, _rollup_args, _window_args
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.checks import CheckWindow
from scouter.profiles import SpcDriftProfile, profile_from_data
from scouter.records import DecodedBatch
from scouter.spc_plan import SummaryPart
from scouter.sql import CUSTOM_AVERAGES, CUSTOM_CHECK_MEANS, PSI_CHECK_DISTRIBUTIONS, PSI_DISTRIBUTIONS
from tests.bench.common import SMOKE, Verdicts, bench_postgres, check, sizes
from tests.drift_profiles import (
    CUSTOM_COLUMNS,
    PSI_COLUMNS,
    SPC_COLUMNS,
    copy_rows,
    custom_profile,
    insert_profile,
    psi_profile,
    spc_profile,
)
from tests.services import scratch_database

FEATURES = 10
#: Writer transactions the SPC rows are stored in, at either size (fewer for small sizes: at least 50 points of a
#: feature each, or the check rightly reads the rows): under 10x the load the writer's group commits grow (natural
#: batching, up to its 50,000 rows), they do not multiply.
TRANSACTIONS = 100


def _metrics() -> ScouterMetrics:
    return ScouterMetrics.create(CollectorRegistry(), process=False)


def _poller(db: Database, name: str = "bench/poller-0", index: int = 0) -> Poller:
    send, _ = open_alert_channel(100_000)
    metrics = _metrics()
    return Poller(name, DatabaseHandle(db), AlertChannel(send, metrics), metrics, PollerConfig(stagger=0), index)


async def _load_spc_through_writer(db: Database, name: str, rows: int, start: dt.datetime, transactions: int) -> None:
    """`rows` SPC rows (FEATURES features alike, in time order over 12 hours) through the writer actor, in
    `transactions` transactions (one sender, one batch each): the writer stores the rows and their summaries."""
    per_feature = rows // FEATURES
    step = dt.timedelta(hours=12) / per_feature
    values = np.random.default_rng(7).normal(0.0, 1.0, (per_feature, FEATURES))
    points = -(-per_feature // transactions)  # per feature and transaction
    send, receive = open_inbox(10)
    writer = WriterActor(receive, send, DatabaseHandle(db), _metrics())
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run, stop)
        for first in range(0, per_feature, points):
            batch = tuple(
                (start + i * step, name, "bench", "1.0.0", f"feature_{f}", v)
                for i, row in enumerate(values[first : first + points].tolist(), first)
                for f, v in enumerate(row)
            )
            result = await write(send, DecodedBatch(spc_rows=batch), timeout=300)
            check(result.ok, f"writer: {result.error}")
        stop.set()


async def _timed_check(db: Database, claimed: ClaimedCheck, profile: SpcDriftProfile, summaries: bool) -> Any:
    """(seconds, findings, window data) of one check's read and evaluation, best of 3."""
    read = functools.partial(spc_window, profile=profile) if summaries else spc_columns
    best, findings, data = float("inf"), None, None
    for _ in range(3):
        t0 = time.perf_counter()
        _, data, _ = await db.run(_read_window, claimed, read, profile.features_to_monitor)
        findings = spc_judge(profile, data)
        best = min(best, time.perf_counter() - t0)
    return best, findings, data


async def bench_one_spc(db: Database, rows: int, verdicts: Verdicts) -> None:
    now: dt.datetime = await db.fetchval("SELECT now()")
    start = now - dt.timedelta(hours=12)
    features = {f"feature_{f}": (0.0, 1.0) for f in range(FEATURES)}
    per_load = max(1, min(TRANSACTIONS, rows // 10 // (FEATURES * 50)))
    figures: dict[tuple[int, int], float] = {}
    raw = float("nan")
    # The scratch database held no rows before its migration, so every row has its segment: windows from before the
    # migration may be judged through summaries (in a database migrated with rows in it they are judged raw).
    await db.execute("UPDATE scouter.spc_summary_horizon SET since = $1", start - dt.timedelta(hours=1))
    # the smaller entity first: its rows are stored before the larger one's, whose check is the one timed end to end
    loads = (
        (rows // 10, "spc-tenth", per_load),
        (rows, "spc", per_load),
        (rows, "spc-fine", 10 * per_load),
    )
    for n, name, transactions in loads:
        document = spc_profile(features, space="bench", name=name)
        uid = await db.run(insert_profile, document, now + dt.timedelta(days=1), start - dt.timedelta(seconds=1))
        t0 = time.perf_counter()
        await _load_spc_through_writer(db, name, n, start, transactions)
        await db.execute("ANALYZE")
        print(f"  loaded {n:,} SPC rows through the writer in {transactions} transactions (rows and summaries)"
              f" in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        await db.execute("UPDATE scouter.drift_profile SET next_run = now() - interval '1 s' WHERE uid = $1", uid)
        poller = _poller(db)
        claimed = await poller.claim()
        assert isinstance(claimed, ClaimedCheck)
        profile = profile_from_data("Spc", document)
        assert isinstance(profile, SpcDriftProfile)
        through, findings, data = await _timed_check(db, claimed, profile, True)
        check(isinstance(data, SummaryWindow), "the SPC check did not go through the summaries")
        parts = [p for plan in data.plans.values() for p in plan]
        summarised = sum(isinstance(p, SummaryPart) for p in parts)
        print(f"    {n:,} points: {summarised} summaries and {len(parts) - summarised} raw ranges"
              f" ({findings.observed:,} points judged, {len(findings.alerts)} alerts)")  # fmt: skip
        figures[n, transactions] = through
        if name == "spc":
            raw, raw_findings, _ = await _timed_check(db, claimed, profile, False)
            check(raw_findings == findings, "SPC check: the summary path's findings differ from the raw path's")
            print(f"    SPC check read + evaluation over {rows:,} points: raw {raw * 1000:8.1f} ms   "
                  f"summaries {through * 1000:8.1f} ms")  # fmt: skip
            t0 = time.perf_counter()
            outcome = await poller.check(claimed)
            total = time.perf_counter() - t0
            print(f"  one SPC check over {rows:,} points: {total:.3f} s, claim to reschedule (outcome {outcome})")
            verdicts.target(f"one SPC check over {rows:,} points", total, " s", 1, at_most=True)
            print(f"  SPC check through summaries / raw at {rows:,} points: {through / raw:.3f}   target <= 0.1")
            verdicts.ratio(f"SPC check raw / through summaries at {rows:,} points", raw, through, target=10)
        else:
            await poller.check(claimed)
        await db.execute("DELETE FROM scouter.drift_profile WHERE uid = $1", uid)
    small = figures[rows // 10, per_load]
    verdicts.ratio("SPC check through summaries, 10x rows / 1x rows", figures[rows, per_load], small)
    # not flat, for the record: the summaries multiply when the rows come in 10x as many transactions
    print(f"  SPC check through summaries in {10 * per_load} transactions / raw at {rows:,} points:"
          f" {figures[rows, 10 * per_load] / raw:.3f}")  # fmt: skip
    verdicts.ratio(
        "SPC check through summaries, 10x rows in 10x transactions / 1x", figures[rows, 10 * per_load], small
    )


async def bench_drain(db: Database, profiles: int, workers: int, verdicts: Verdicts) -> None:
    now: dt.datetime = await db.fetchval("SELECT now()")
    due, previous, t = now - dt.timedelta(seconds=1), now - dt.timedelta(hours=1), now - dt.timedelta(minutes=30)
    spc_rows, psi_rows, custom_rows = [], [], []
    for i in range(profiles):
        name = f"m{i:04}"
        kind = i % 3
        if kind == 0:
            document = spc_profile({"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0)}, space="drain", name=name)
            spc_rows += [
                (t + j * dt.timedelta(seconds=1), "drain", name, "1.0.0", f, (j % 7 - 3) / 3)
                for f in "abc"
                for j in range(50)
            ]
        elif kind == 1:
            document = psi_profile({f: [0.1] * 10 for f in "abc"}, space="drain", name=name)
            psi_rows += [
                (t, "drain", name, "1.0.0", f, b, 20 + (b == 1) * 200 * (i % 2)) for f in "abc" for b in range(1, 11)
            ]
        else:
            document = custom_profile(
                {"mae": 1.0, "acc": 0.9}, {"mae": ("Above", 0.5), "acc": ("Below", 0.1)}, space="drain", name=name
            )
            custom_rows += [(t, "drain", name, "1.0.0", "mae", 1.0 + (i % 2)), (t, "drain", name, "1.0.0", "acc", 0.88)]
        await db.run(insert_profile, document, due, previous, False)
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, spc_rows)
    await db.run(copy_rows, "psi_drift", PSI_COLUMNS, psi_rows)
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, custom_rows)
    await db.execute("ANALYZE")

    pollers = [_poller(db, f"bench/poller-{i}", i) for i in range(workers)]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await db.execute("UPDATE scouter.drift_profile SET active = true WHERE space = 'drain'")
        t0 = time.perf_counter()
        for poller in pollers:
            nursery.start_soon(poller.run, stop)
        while await db.fetchval(
            "SELECT count(*) FROM scouter.drift_profile WHERE space = 'drain' AND previous_run = $1", previous
        ):
            await trio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        stop.set()
    checks = sum(p.statistics().checks for p in pollers)
    alerts = await db.fetchval("SELECT count(*) FROM scouter.drift_alert WHERE space = 'drain'")
    print(
        f"  {profiles:,} due profiles drained by {workers} pollers: {elapsed:.2f} s"
        f" ({checks / elapsed:,.0f} checks/s, {alerts} alerts)"
    )
    verdicts.target(f"{profiles:,} due profiles drained", elapsed, " s", 30, at_most=True)


#: The check statements: (through the rollups, over the raw rows).
_CHECK_SQL = {"custom": (CUSTOM_CHECK_MEANS, CUSTOM_AVERAGES), "psi": (PSI_CHECK_DISTRIBUTIONS, PSI_DISTRIBUTIONS)}


async def _check_query(conn: Any, kind: str, entity: Any, window: CheckWindow, rollups: bool) -> list[tuple[Any, ...]]:
    names = [f"{'metric' if kind == 'custom' else 'feature'}_{f}" for f in range(FEATURES)]
    through_rollups, over_rows = _CHECK_SQL[kind]
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if rollups:
            rows = await conn.fetch(through_rollups, *await _rollup_args(conn, entity, window, names))
        else:
            rows = await conn.fetch(over_rows, *_window_args(entity, window, names))
    return sorted(tuple(r) for r in rows)


def _alike(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """The same rows, floats equal to rounding."""
    return len(a) == len(b) and all(
        len(x) == len(y)
        and all(
            u == v or (isinstance(u, float) and abs(u - v) <= 1e-9 * max(1.0, abs(u)))
            for u, v in zip(x, y, strict=True)
        )
        for x, y in zip(a, b, strict=True)
    )


async def bench_checks_through_rollups(db: Database, rows: int, verdicts: Verdicts) -> None:
    now: dt.datetime = await db.fetchval("SELECT now()")
    start = now - dt.timedelta(hours=12)
    window = CheckWindow(start - dt.timedelta(seconds=1), now, "", None)
    rng = np.random.default_rng(18)
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    for n in (rows // 10, rows):
        name = f"checks-{n}"
        entity = SimpleNamespace(space="bench", name=name, version="1.0.0")
        step = dt.timedelta(hours=12) / n
        t0 = time.perf_counter()
        for first in range(0, n, 100_000):
            index = range(first, min(first + 100_000, n))
            values = rng.normal(0.0, 1.0, len(index)).tolist()
            custom = [
                (start + i * step, "bench", name, "1.0.0", f"metric_{i % FEATURES}", v)
                for i, v in zip(index, values, strict=True)
            ]
            psi = [
                (start + i * step, "bench", name, "1.0.0", f"feature_{i % FEATURES}", i % 10, 1 + i % 7) for i in index
            ]
            await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, custom)
            await db.run(copy_rows, "psi_drift", PSI_COLUMNS, psi)
        await db.execute("ANALYZE scouter.custom_drift")
        await db.execute("ANALYZE scouter.psi_drift")
        elapsed = time.perf_counter() - t0
        print(f"  loaded {n:,} custom and {n:,} PSI rows (rollups kept by the triggers) in {elapsed:.1f} s")
        for kind in _CHECK_SQL:
            rolled = await db.run(_check_query, kind, entity, window, True)
            raw = await db.run(_check_query, kind, entity, window, False)
            check(bool(raw) and _alike(raw, rolled), f"{kind} check: the rollup path's answer differs from the rows'")
            timings = []
            for rollups in (False, True):
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    await db.run(_check_query, kind, entity, window, rollups)
                    best = min(best, time.perf_counter() - t0)
                timings.append(best)
            figures[kind, n] = (timings[0], timings[1])
            print(f"    {kind:>6} check over {n:,} rows, 12 hours: rows {timings[0] * 1000:8.1f} ms   "
                  f"rollups {timings[1] * 1000:8.1f} ms")  # fmt: skip
    small, big = rows // 10, rows
    for kind in _CHECK_SQL:
        raw, rolled = figures[kind, big]
        verdicts.ratio(f"{kind} check rows / rollups at {big:,} rows", raw, rolled, target=10)
        verdicts.ratio(
            f"{kind} check through rollups, 10x rows / 1x rows", figures[kind, big][1], figures[kind, small][1]
        )


async def main(dsn: str, rows: int, profiles: int, workers: int) -> None:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=workers + 4, min_pool_size=2))
        try:
            await migrate(db)
            await MaintenanceActor(DatabaseHandle(db)).run_once()
            verdicts = Verdicts()
            print(f"drift bench{' (smoke sizes)' if SMOKE else ''}")
            await bench_one_spc(db, rows, verdicts)
            await bench_drain(db, profiles, workers, verdicts)
            await bench_checks_through_rollups(db, rows, verdicts)
        finally:
            await close_pool(db)
    verdicts.finish()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    defaults = [sizes(1_000_000, 10_000), sizes(1_000, 30), 4]
    rows, profiles, workers = (args + defaults[len(args) :])[:3]
    with scratch_database(bench_postgres(), prefix="scouter_bench_") as dsn:
        trio.run(main, dsn, rows, profiles, workers)
