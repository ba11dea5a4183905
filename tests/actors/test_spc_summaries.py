"""SPC checks through write-time summaries against a real PostgreSQL: for random record times written in several
transactions (through the writer, overlapping, with ties, late ones, a hand-written COPY and a DELETE beside them)
and random windows, the summary path's alerts and late count equal the raw path's."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
import pytest
import trio

from actors._spc_reads import RawColumns, SummaryWindow, spc_columns, spc_judge, spc_window
from actors.database import Database, DatabaseHandle
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.poller import ClaimedCheck
from actors.writer import WriterActor, open_inbox, write
from scouter.checks import CheckWindow
from scouter.profiles import SpcDriftProfile, profile_from_data
from scouter.records import DecodedBatch
from scouter.spc_plan import RawRange, SummaryPart
from tests.actors.test_poller_windows import check_due, make_poller
from tests.drift_profiles import SPC_COLUMNS, copy_rows, insert_profile, spc_profile

pytestmark = pytest.mark.postgres

RULES = ("8 16 4 8 2 4 1 1", "3 4 2 3 -1 0 1 1", "2 2 2 2 2 2 1 1", "5 -3 0 6 2 2 1 2", "0 0 0 0 0 0 0 0")
ZONES = (("Zone1", "Zone2", "Zone3", "Zone4"), ("Zone2", "Zone4"), ())
FEATURES = ("a", "b", "c")
MS = dt.timedelta(milliseconds=1)


def _rows(rng: random.Random, name: str, base: dt.datetime, span_ms: int) -> list[tuple[Any, ...]]:
    """One transaction's rows (`scouter.records.SPC_COLUMNS` order): each feature a few points over a random
    stretch of ``[base, base + span_ms)``, on a 1 ms grid (so ties occur), values in runs so that rules fire."""
    lo = rng.randrange(span_ms)
    hi = min(span_ms, lo + rng.randrange(1, span_ms // 30))
    rows = []
    grid = rng.choice((1, 1, 500))  # a coarse grid: ties inside the transaction
    for feature in FEATURES[: rng.choice((2, 3, 3))]:
        level = rng.gauss(0, 1.5)
        for _ in range(rng.randrange(1, 40)):
            level = level + rng.gauss(0, 0.7) if rng.random() < 0.8 else rng.gauss(0, 2)
            at = rng.randrange(lo, hi) // grid * grid
            rows.append((base + at * MS, name, "cap", "1.0.0", feature, level))
    return rows


def _touching(rng: random.Random, name: str, base: dt.datetime, span_ms: int) -> list[list[tuple[Any, ...]]]:
    """Two transactions whose rows share a timestamp at their edge: the newer starts where the older ends."""
    older = _rows(rng, name, base, span_ms)
    edge = max(r[0] for r in older)
    newer = _rows(rng, name, base, span_ms)
    start = min(r[0] for r in newer)
    return [older, [(edge + (r[0] - start), *r[1:]) for r in newer]]


async def _both(
    conn: asyncpg.Connection, entity: Any, window: CheckWindow, profile: SpcDriftProfile
) -> tuple[Any, int, Any, int]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # min_points=0: these transactions are small, and the point is to judge through their summaries
        summarised, late_s = await spc_window(conn, entity, window, profile.features_to_monitor, profile, 0)
        raw, late_r = await spc_columns(conn, entity, window, profile.features_to_monitor)
    return summarised, late_s, raw, late_r


def _summary_parts(data: Any) -> int:
    """Summaries the window was judged with (0: read raw, as a window with no usable summary is)."""
    if isinstance(data, RawColumns):
        return 0
    assert isinstance(data, SummaryWindow)
    return sum(isinstance(p, SummaryPart) for parts in data.plans.values() for p in parts)


async def _write_all(db: Database, metrics: ScouterMetrics, transactions: Sequence[list[tuple[Any, ...]]]) -> None:
    send, receive = open_inbox(10)
    writer = WriterActor(receive, send, DatabaseHandle(db), metrics)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run, stop)
        for rows in transactions:  # one at a time: one transaction each
            assert (await write(send, DecodedBatch(spc_rows=tuple(rows)))).ok
        stop.set()


@pytest.mark.parametrize("seed", range(10))
async def test_summary_path_equals_raw_path(db: Database, metrics: ScouterMetrics, now: dt.datetime, seed: int) -> None:
    rng = random.Random(seed)
    name = f"m{seed}"
    base = now - dt.timedelta(hours=1)
    # A fresh database holds no row from before the migration: summaries may judge windows from `base` on.
    await db.execute("UPDATE scouter.spc_summary_horizon SET since = $1", base)
    sigma = {f: rng.uniform(0.5, 1.5) for f in FEATURES[: rng.choice((2, 3))]}
    document = spc_profile(
        {f: (0.0, s) for f, s in sigma.items()}, name=name, rule=rng.choice(RULES), zones=rng.choice(ZONES)
    )
    uid = await db.run(insert_profile, document, now + dt.timedelta(hours=1), base)
    profile = profile_from_data("Spc", document)
    assert isinstance(profile, SpcDriftProfile)
    span_ms = 20 * 60 * 1000
    with trio.fail_after(60):
        touching = [rows for _ in range(3) for rows in _touching(rng, name, base, span_ms)]
        await _write_all(db, metrics, [_rows(rng, name, base, span_ms) for _ in range(12)] + touching)
        await db.run(copy_rows, "spc_drift", SPC_COLUMNS, [  # another path: a segment, no summary
            (t, "cap", name, "1.0.0", f, v) for (t, name_, _, _, f, v) in _rows(rng, name, base, span_ms)
        ])  # fmt: skip
        await db.execute(
            "DELETE FROM scouter.spc_drift WHERE name = $1 AND created_at >= $2 AND created_at < $3",
            name, base + 5 * 60_000 * MS, base + 5 * 60_000 * MS + 20 * MS,
        )  # fmt: skip

    entity = type("Entity", (), {"space": "cap", "name": name, "version": "1.0.0"})
    used = mixed = 0
    for _ in range(25):
        a, b = sorted(rng.sample(range(-1000, span_ms + 1000), 2))
        window = CheckWindow(base + a * MS, base + b * MS, "", None)
        summarised, late_s, raw, late_r = await db.run(_both, entity, window, profile)
        assert isinstance(raw, RawColumns)
        used += _summary_parts(summarised)
        if isinstance(summarised, SummaryWindow):  # summaries and raw ranges side by side
            mixed += any(isinstance(p, RawRange) for parts in summarised.plans.values() for p in parts)
        assert spc_judge(profile, summarised) == spc_judge(profile, raw), (seed, a, b)
        assert late_s == late_r == 0
    assert used > 0
    assert mixed > 0

    # a real check of [base, bound), then late rows (before that bound) and new ones: the next window has both
    poller = make_poller(db, metrics)
    await db.execute("UPDATE scouter.drift_profile SET next_run = now() - interval '1 ms' WHERE uid = $1", uid)
    claimed = await poller.claim()
    assert isinstance(claimed, ClaimedCheck)
    assert await poller.check(claimed) in ("clean", "drift")
    bound = await db.fetchval("SELECT previous_run FROM scouter.drift_profile WHERE uid = $1", uid)
    late = [_rows(rng, name, base, span_ms) for _ in range(3)]
    fresh = [[(bound + MS + (t - base) / 1000, *rest) for (t, *rest) in _rows(rng, name, base, 4000)] for _ in range(4)]
    with trio.fail_after(60):
        await _write_all(db, metrics, [rows for pair in zip(late, fresh, strict=False) for rows in pair] + fresh[3:])
    await trio.sleep(0.1)  # the fresh rows' created_at lie up to 5 ms after the bound: the next bound is past them

    await db.execute("UPDATE scouter.drift_profile SET next_run = now() - interval '1 ms' WHERE uid = $1", uid)
    claimed = await poller.claim()
    assert isinstance(claimed, ClaimedCheck)
    assert claimed.previous_snapshot is not None
    window = CheckWindow(claimed.previous_run, await db.fetchval("SELECT now()"), "", claimed.previous_snapshot)
    summarised, late_s, raw, late_r = await db.run(_both, claimed, window, profile)
    assert late_s == late_r > 0
    assert spc_judge(profile, summarised) == spc_judge(profile, raw)
    assert await poller.check(claimed) in ("clean", "drift")


async def test_summaries_are_stored_with_their_rows(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """Every writer transaction stores one segment (the trigger) and, for an entity with an SPC profile, one summary
    per feature, stamped; an entity without a profile gets segments only."""
    await db.run(insert_profile, spc_profile({"a": (0.0, 1.0)}, name="known"), now + dt.timedelta(hours=1), now)
    rows = [
        (now - i * MS, name, "cap", "1.0.0", f, float(i)) for name in ("known", "other") for f in "ab" for i in range(5)
    ]
    with trio.fail_after(30):
        await _write_all(db, metrics, [rows])
    segments = await db.fetch("SELECT name, feature, n FROM scouter.spc_segment ORDER BY 1, 2")
    assert [("known", "a", 5), ("known", "b", 5), ("other", "a", 5), ("other", "b", 5)] == [tuple(r) for r in segments]
    summaries = await db.fetch("SELECT name, feature, n, first_at, last_at FROM scouter.spc_summary ORDER BY 1, 2")
    assert [("known", "a", 5, now - 4 * MS, now), ("known", "b", 5, now - 4 * MS, now)] == [tuple(r) for r in summaries]


async def test_a_profile_update_makes_old_summaries_raw(
    db: Database, metrics: ScouterMetrics, now: dt.datetime
) -> None:
    """Summaries judged with the old limits are not used once the limits change (their stamp differs): the check
    reads those rows raw and still equals the raw path."""
    base = now - dt.timedelta(minutes=10)
    await db.execute("UPDATE scouter.spc_summary_horizon SET since = $1", base)
    old = spc_profile({"a": (0.0, 1.0)}, name="moved")
    await db.run(insert_profile, old, now + dt.timedelta(hours=1), base)
    rows = [(base + i * MS, "moved", "cap", "1.0.0", "a", 2.5 - (i % 3)) for i in range(200)]
    with trio.fail_after(30):
        await _write_all(db, metrics, [rows[:100], rows[100:]])
    new = spc_profile({"a": (2.0, 0.5)}, name="moved")
    await db.execute(
        "UPDATE scouter.drift_profile SET profile = $1::jsonb WHERE name = 'moved'", orjson.dumps(new).decode()
    )
    entity = type("Entity", (), {"space": "cap", "name": "moved", "version": "1.0.0"})
    window = CheckWindow(base, now, "", None)
    for document, usable in ((old, 2), (new, 0)):
        profile = profile_from_data("Spc", document)
        assert isinstance(profile, SpcDriftProfile)
        summarised, _, raw, _ = await db.run(_both, entity, window, profile)
        assert usable == _summary_parts(summarised)
        assert spc_judge(profile, summarised) == spc_judge(profile, raw)
    poller = make_poller(db, metrics)
    uid = await db.fetchval("SELECT uid FROM scouter.drift_profile WHERE name = 'moved'")
    assert await check_due(db, poller, uid) in ("clean", "drift")


async def test_maintenance_moves_the_horizon_past_retention(db: Database, now: dt.datetime) -> None:
    """Partitions past retention are dropped without a trigger: windows before the cut-off are judged raw from then
    on, and the segments wholly before it go (one reaching past it stays: later windows still need it)."""
    day = dt.timedelta(days=1)
    await db.execute("UPDATE scouter.spc_summary_horizon SET since = $1", now - 100 * day)
    old = [(now - 70 * day, "cap", "old", "1.0.0", "a", 1.0), (now - 69 * day, "cap", "old", "1.0.0", "a", 1.0)]
    reaching = [
        (now - 61 * day, "cap", "reach", "1.0.0", "a", 1.0),
        (now - 59 * day, "cap", "reach", "1.0.0", "a", 1.0),
    ]
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, old)
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, reaching)
    await MaintenanceActor(DatabaseHandle(db)).run_once()
    since = await db.fetchval("SELECT since FROM scouter.spc_summary_horizon")
    assert now - 61 * day < since <= now - 59 * day
    # the row at -59 days moved from the default partition into its new one: through the parent, so a segment more
    assert {"reach"} == {r["name"] for r in await db.fetch("SELECT name FROM scouter.spc_segment")}
