"""The SPC check's reads (asyncio side, in the check's REPEATABLE READ snapshot): through the write-time summaries
when the window allows it (`scouter.spc_plan`), else every raw value of the window (today's path, `SPC_VALUES`).

Through summaries, a check costs a few index-range reads: the window's segments and summaries (one row per
transaction and feature), the raw ranges the plan leaves (overlapping transactions, edges, rows of other paths),
the late rows, and the summaries the cut to the shortest falls inside of.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import asyncpg
import attrs
import numpy as np
import numpy.typing as npt

from scouter.checks import CheckWindow, Findings, spc_findings
from scouter.drift.spc_summary import SpcSegment
from scouter.profiles import SpcDriftProfile
from scouter.spc_plan import (
    MIN_POINTS_PER_SEGMENT,
    Part,
    RawRange,
    StoredSegment,
    SummaryPart,
    as_raw,
    feature_stamps,
    plan_parts,
    spans_of,
    straddling,
    summary_findings,
    worth_summaries,
)
from scouter.sql import (
    SPC_LATE_VALUES,
    SPC_RANGE_VALUES,
    SPC_SEGMENT_COUNT,
    SPC_SEGMENTS,
    SPC_SUMMARY_SINCE,
    SPC_VALUES,
)

__all__ = ["RawColumns", "SummaryWindow", "spc_columns", "spc_judge", "spc_window"]


class _Entity(Protocol):
    space: str
    name: str
    version: str


@attrs.frozen
class RawColumns:
    columns: Mapping[str, npt.NDArray[np.float64]]


@attrs.frozen
class SummaryWindow:
    plans: Mapping[str, Sequence[Part]]
    raw: Mapping[RawRange, npt.NDArray[np.float64]]
    late: Mapping[str, npt.NDArray[np.float64]]


async def spc_columns(conn: asyncpg.Connection, c: _Entity, w: CheckWindow, features: Sequence[str]) -> Any:
    """Every value of the window per feature, newest first, and the late count (the raw path)."""
    rows = await conn.fetch(SPC_VALUES, c.space, c.name, c.version, w.start, w.end, w.after, list(features))
    columns = {r["feature"]: np.array(r["values"], dtype=np.float64) for r in rows}
    return RawColumns(columns), sum(r["late"] for r in rows)


def _segment(r: asyncpg.Record) -> StoredSegment:
    summary = None
    if r["stamp"] is not None:
        newest = np.frombuffer(r["newest"], dtype=np.int8)
        oldest = np.frombuffer(r["oldest"], dtype=np.int8)
        summary = SpcSegment(r["summary_n"], r["fired"], newest, oldest)
    return StoredSegment(
        r["feature"], r["first_at"], r["last_at"], r["n"], r["pairs"], r["stamp"], summary,
        r["summary_first"], r["summary_last"],
    )  # fmt: skip


async def _ranges(
    conn: asyncpg.Connection, c: _Entity, ranges: Sequence[RawRange]
) -> dict[RawRange, npt.NDArray[np.float64]]:
    if not ranges:
        return {}
    spans, span_of_range = spans_of(ranges)
    rows = await conn.fetch(
        SPC_RANGE_VALUES, c.space, c.name, c.version, [lo for lo, _ in spans], [hi for _, hi in spans],
        [s + 1 for s in span_of_range], [r.feature for r in ranges], [r.lo for r in ranges], [r.hi for r in ranges],
    )  # fmt: skip
    found = {r["k"]: r["values"] for r in rows}
    return {r: np.array(found.get(i + 1, ()), dtype=np.float64) for i, r in enumerate(ranges)}


def _replaced(part: Part, replaced: Mapping[SummaryPart, RawRange]) -> Part:
    return replaced.get(part, part) if isinstance(part, SummaryPart) else part


async def spc_window(
    conn: asyncpg.Connection,
    c: _Entity,
    w: CheckWindow,
    features: Sequence[str],
    profile: SpcDriftProfile,
    min_points: int = MIN_POINTS_PER_SEGMENT,
) -> Any:
    """The window's data, through summaries when possible (`SummaryWindow`), else `RawColumns`; and the late count.
    A window from the beginning of time, or starting before the summaries' horizon, is read raw, and so is one whose
    transactions hold fewer than ``min_points`` points of a feature on average (`worth_summaries`)."""
    since = await conn.fetchval(SPC_SUMMARY_SINCE)
    stamps, no_limits = feature_stamps(profile)
    if w.start is None or since is None or w.start < since or no_limits is None:
        return await spc_columns(conn, c, w, features)
    names = list(features)
    counted = await conn.fetchrow(SPC_SEGMENT_COUNT, c.space, c.name, c.version, w.start, w.end, names)
    if not worth_summaries(counted["segments"], counted["points"], min_points):
        return await spc_columns(conn, c, w, features)
    segments = [_segment(r) for r in await conn.fetch(SPC_SEGMENTS, c.space, c.name, c.version, w.start, w.end, names)]
    plans = plan_parts(segments, w.start, w.end, stamps, no_limits)
    if not any(isinstance(p, SummaryPart) for parts in plans.values() for p in parts):
        return await spc_columns(conn, c, w, features)  # nothing summarised: one read of the window is cheaper
    raw = await _ranges(conn, c, [p for parts in plans.values() for p in parts if isinstance(p, RawRange)])
    late: dict[str, npt.NDArray[np.float64]] = {}
    if w.after is not None:
        rows = await conn.fetch(SPC_LATE_VALUES, c.space, c.name, c.version, w.start, w.after, names)
        late = {r["feature"]: np.array(r["values"], dtype=np.float64) for r in rows}
    cut = straddling(plans, raw, late)
    if cut:
        replaced = {part: as_raw(part) for part in cut}
        raw |= await _ranges(conn, c, list(replaced.values()))
        plans = {feature: [_replaced(p, replaced) for p in parts] for feature, parts in plans.items()}
    return SummaryWindow(plans, raw, late), sum(v.shape[0] for v in late.values())


def spc_judge(profile: SpcDriftProfile, data: RawColumns | SummaryWindow | None) -> Findings:
    """The check's findings from what `spc_window` read (pure; run in a worker thread)."""
    if isinstance(data, SummaryWindow):
        return summary_findings(profile, data.plans, data.raw, data.late)
    return spc_findings(profile, data.columns if data is not None else {})
