"""The SPC check through write-time summaries (pure): which parts of a window come from summaries, which are read
raw, and the check's findings from both, equal to the check over every raw value (`scouter.checks.spc_findings`).

Per feature, the window's segments (`scouter.sql._spc_summaries`) are clustered by overlap of their closed
[first, last] ranges. A cluster of one segment, wholly inside ``[start, end)``, whose summary matches it and carries
the stamp of the profile being judged, is a `SummaryPart`; every other cluster is read raw as a `RawRange`
(neighbouring ones merged). Within a cluster nothing tells the order of rows of different transactions, hence raw;
equal timestamps across transactions are an overlap too, so ties are only ever ordered inside one transaction, by
value, as the raw check orders them. Late rows (before the window) are read raw and come last (oldest).

Cut to the shortest: a feature's newest N points are kept. Where the cut falls inside a summary, that summary's
rows are read raw (`straddling`) and the part becomes a raw range (`as_raw`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from .checks import Findings
from .drift.spc import SpcLimits, alerts_of, parse_spc_rule, spc_alert_maps, zone_codes
from .drift.spc_summary import SpcSegment, fold_fired
from .profiles import SpcDriftProfile
from .spc_summaries import entity_limits, profile_limits

__all__ = [
    "MIN_POINTS_PER_SEGMENT",
    "RawRange",
    "StoredSegment",
    "SummaryPart",
    "as_raw",
    "feature_stamps",
    "plan_parts",
    "spans_of",
    "straddling",
    "summary_findings",
    "worth_summaries",
]

_TICK = dt.timedelta(microseconds=1)  # PostgreSQL's resolution: [a, b + tick) is the closed range [a, b]

#: Below this many points per segment on average, a window is read raw: a segment and its summary cost the check
#: about as much as 15-20 raw points (bench_drift: 10,000 summaries of 100 points cost 0.17-0.21 of the raw read),
#: so few points per transaction make summaries the slower path.
MIN_POINTS_PER_SEGMENT = 24


def worth_summaries(segments: int, points: int, min_points: int = MIN_POINTS_PER_SEGMENT) -> bool:
    """Whether a window of ``segments`` segments holding ``points`` points is cheaper through summaries."""
    return segments > 0 and points >= min_points * segments


@attrs.frozen
class StoredSegment:
    """One ``spc_segment`` row, with its transaction's summary of the feature when there is one."""

    feature: str
    first: dt.datetime
    last: dt.datetime
    n: int
    pairs: int  # (segment, summary) pairs of its transaction and feature: a summary is usable only when 1
    stamp: int | None = None
    summary: SpcSegment | None = None
    summary_first: dt.datetime | None = None
    summary_last: dt.datetime | None = None

    def usable(self, stamp: int | None, start: dt.datetime, end: dt.datetime) -> bool:
        s = self.summary
        return (
            s is not None
            and self.pairs == 1
            and self.stamp == stamp
            and s.n == self.n
            and (self.summary_first, self.summary_last) == (self.first, self.last)
            and start <= self.first
            and self.last < end
        )


@attrs.frozen
class SummaryPart:
    feature: str
    first: dt.datetime
    last: dt.datetime
    segment: SpcSegment = attrs.field(eq=False)


@attrs.frozen
class RawRange:
    """The feature's rows with created_at in [lo, hi)."""

    feature: str
    lo: dt.datetime
    hi: dt.datetime


Part = SummaryPart | RawRange


def feature_stamps(profile: SpcDriftProfile) -> tuple[Mapping[str, int], int | None]:
    """Each feature's stamp under ``profile`` and the stamp of a feature without limits (None for every feature
    when the rule cannot be summarised; a bad rule raises `SpcRuleError`, as the raw check does)."""
    parse_spc_rule(profile.rule)  # raises on a bad rule, which entity_limits reports as None
    known = entity_limits(profile)
    if known is None:
        return {}, None
    return {feature: stamp for feature, (_, stamp) in known.features.items()}, known.no_limits_stamp


def plan_parts(
    segments: Iterable[StoredSegment],
    start: dt.datetime,
    end: dt.datetime,
    stamps: Mapping[str, int],
    no_limits_stamp: int | None,
) -> dict[str, list[Part]]:
    """Per feature, the window ``[start, end)``'s parts, newest first."""
    by_feature: dict[str, list[StoredSegment]] = {}
    for segment in segments:
        by_feature.setdefault(segment.feature, []).append(segment)
    plans: dict[str, list[Part]] = {}
    for feature, found in by_feature.items():
        stamp = stamps.get(feature, no_limits_stamp) if no_limits_stamp is not None else None
        found.sort(key=lambda s: s.first)
        clusters: list[list[StoredSegment]] = []
        high: dt.datetime | None = None
        for segment in found:
            if high is not None and segment.first <= high:  # closed ranges: an equal timestamp overlaps
                clusters[-1].append(segment)
                high = max(high, segment.last)
            else:
                clusters.append([segment])
                high = segment.last
        ascending: list[Part] = []
        for cluster in clusters:
            only = cluster[0]
            if len(cluster) == 1 and only.usable(stamp, start, end):
                assert only.summary is not None
                ascending.append(SummaryPart(feature, only.first, only.last, only.summary))
                continue
            lo = max(cluster[0].first, start)
            hi = min(max(s.last for s in cluster) + _TICK, end)
            previous = ascending[-1] if ascending else None
            if isinstance(previous, RawRange):
                ascending[-1] = RawRange(feature, previous.lo, hi)  # nothing of the feature lies between them
            else:
                ascending.append(RawRange(feature, lo, hi))
        plans[feature] = ascending[::-1]
    return plans


def spans_of(ranges: Sequence[RawRange]) -> tuple[list[tuple[dt.datetime, dt.datetime]], list[int]]:
    """The time spans to read ``ranges`` in, whatever their feature: the union of the ranges as disjoint
    ``[lo, hi)`` spans (so that rows of several features' ranges are read once), and each range's span."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i].lo)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    span_of_range = [0] * len(ranges)
    for i in order:
        lo, hi = ranges[i].lo, ranges[i].hi
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
        span_of_range[i] = len(spans) - 1
    return spans, span_of_range


def as_raw(part: SummaryPart) -> RawRange:
    """A summary's rows as a raw range: no other segment of its feature overlaps it, so these are exactly its rows."""
    return RawRange(part.feature, part.first, part.last + _TICK)


def _counts(
    plans: Mapping[str, Sequence[Part]], raw: Mapping[RawRange, npt.NDArray[np.float64]], late: Mapping[str, object]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feature in {*plans, *late}:
        total = sum(p.segment.n if isinstance(p, SummaryPart) else raw[p].shape[0] for p in plans.get(feature, ()))
        total += len(late.get(feature, ()))  # type: ignore[arg-type]
        if total:
            counts[feature] = total
    return counts


def straddling(
    plans: Mapping[str, Sequence[Part]],
    raw: Mapping[RawRange, npt.NDArray[np.float64]],
    late: Mapping[str, npt.NDArray[np.float64]],
) -> list[SummaryPart]:
    """The summaries the cut to the shortest falls inside of: their rows must be read raw."""
    counts = _counts(plans, raw, late)
    if not counts:
        return []
    keep = min(counts.values())
    found = []
    for feature in counts:
        taken = 0
        for part in plans.get(feature, ()):
            size = part.segment.n if isinstance(part, SummaryPart) else raw[part].shape[0]
            if isinstance(part, SummaryPart) and taken < keep < taken + size:
                found.append(part)
            taken += size
            if taken >= keep:
                break
    return found


def summary_findings(
    profile: SpcDriftProfile,
    plans: Mapping[str, Sequence[Part]],
    raw: Mapping[RawRange, npt.NDArray[np.float64]],
    late: Mapping[str, npt.NDArray[np.float64]],
) -> Findings:
    """The check's findings from the window's parts (no summary may straddle the cut: see `straddling`)."""
    rule = parse_spc_rule(profile.rule)
    counts = _counts(plans, raw, late)
    if not counts:
        return Findings("Spc", (), 0)
    keep = min(counts.values())
    limits: Mapping[str, SpcLimits] = profile_limits(profile)
    found = {}
    for feature in sorted(counts):
        lim = limits.get(feature)
        parts: list[SpcSegment | npt.NDArray[np.int8]] = []
        left = keep
        for part in [*plans.get(feature, ()), late.get(feature)]:
            if left == 0:
                break
            if part is None:
                continue
            if isinstance(part, SummaryPart):
                assert part.segment.n <= left, "a summary straddles the cut: read it raw first"
                parts.append(part.segment)
                left -= part.segment.n
                continue
            values = raw[part] if isinstance(part, RawRange) else part
            taken = values[:left]
            parts.append(zone_codes(taken, lim))
            left -= taken.shape[0]
        found[feature] = alerts_of(fold_fired(parts, rule), profile.zones_to_monitor)
    return Findings("Spc", tuple(spc_alert_maps(found)), keep * len(counts))
