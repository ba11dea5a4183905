"""Write-time summaries of SPC sequences: the SPC check's alert set as a monoid (pure; no I/O).

Every SPC rule (consecutive, alternating per zone, and the 7-point trend) asks whether *some window of w contiguous
points* of a feature's sequence (newest first) satisfies a predicate of that window's codes alone: upstream's
``i + 1 >= C`` only says the window lies inside the sequence. So for a fixed profile (limits and rule) the alert
set of a sequence is a monoid over segments. With ``span = L - 1``, L the longest rule window (the largest enabled
C or A, and 7), a segment keeps:

* ``n`` and ``fired``: the (zone, kind) rules any window inside it fires, before the zone filter (a bit mask);
* ``newest``: its first min(n, span) codes, and ``oldest``: its last codes not already in ``newest`` (at most span).

A window of the concatenation (newer X, then older Y) lies inside X, inside Y, or crosses the boundary; one that
crosses has at most w - 1 <= span points on each side, so it lies in X's last span codes followed by Y's first span
codes. Hence ``fired(XY) = fired(X) | fired(Y) | fired(tail(X) ++ head(Y))``. `fold_fired` does this for a whole
run of parts in one vectorised pass: it lays out every part's kept codes (all of them for a raw part or a short
summary, ``newest`` | break | ``oldest`` for a long one) and judges every window that crosses no break; every window
of the whole sequence that spans a boundary lies in such a stretch (the parts it covers wholly are shorter than it,
so kept whole). The zone filter (zones_to_monitor) is applied to the fired set at the end, as the raw check does.

A summary is only valid for the limits and rule it was computed with: its ``stamp`` hashes both, and the check
uses it only when the stamp of the profile it judges with is the same.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from .spc import TREND_WINDOW, AlertZone, SpcAlert, SpcAlertType, SpcLimits, SpcRule

__all__ = [
    "EMPTY",
    "MAX_SPAN",
    "NO_LIMITS",
    "SpcSegment",
    "alerts_of",
    "concat",
    "feature_stamp",
    "fired_by_group",
    "fold_fired",
    "segment_of",
    "span_of",
]

#: Rules whose longest window exceeds this many points + 1 get no summaries (their rows are read raw): a summary
#: keeps up to 2 x span codes.
MAX_SPAN = 255

#: Limits that give every value the code 0 (NaN compares false everywhere), as a feature without limits gets.
NO_LIMITS = SpcLimits(*(math.nan,) * 7)

# fired-set bits: zones 1-3 consecutive/alternating, zone 4 (both kinds are OutOfBounds), the trend
_TREND_BIT = 1 << 7
_ZONE4_BIT = 1 << 6


def _bit(k: int, alternating: bool) -> int:
    return _ZONE4_BIT if k == 4 else 1 << (2 * (k - 1) + int(alternating))


def span_of(rule: SpcRule) -> int:
    """L - 1: the longest enabled rule window (disabled: <= 0), at least the trend's 7 points, minus one."""
    enabled = [w for w in (*rule.consecutive, *rule.alternating) if w > 0]
    return max([TREND_WINDOW, *enabled]) - 1


def feature_stamp(limits: SpcLimits | None, rule: SpcRule) -> int:
    """Identity of what a feature's summary was computed with: its limits (None: no limits) and the rule, as a
    signed 64-bit integer (a PostgreSQL bigint)."""
    h = hashlib.blake2b(b"scouter spc summary v1", digest_size=8)
    h.update(b"-" if limits is None else struct.pack("<7d", *attrs.astuple(limits)))
    h.update(struct.pack("<8q", *rule.consecutive, *rule.alternating))
    return int.from_bytes(h.digest(), "little", signed=True)


def _window_all(flags: npt.NDArray[np.bool_], width: int) -> npt.NDArray[np.bool_]:
    n = flags.shape[0]
    cs = np.concatenate(([0], np.cumsum(flags, dtype=np.int32)))
    return (cs[width:] - cs[: n - width + 1]) == width


def fired_by_group(codes: npt.ArrayLike, group: npt.ArrayLike, groups: int, rule: SpcRule) -> npt.NDArray[np.int16]:
    """Per group, the fired mask of its codes (newest first); ``group`` (non-decreasing) says which group each code
    belongs to. Only windows inside one group count: one pass over all groups' codes, whatever their number."""
    d = np.asarray(codes, dtype=np.int8)
    g = np.asarray(group, dtype=np.int64)
    out = np.zeros(groups, dtype=np.int16)
    m = d.shape[0]
    if m == 0:
        return out

    def mark(starts_ok: npt.NDArray[np.bool_], width: int, bit: int) -> None:
        hit = starts_ok & (g[: m - width + 1] == g[width - 1 :])
        if hit.any():
            np.bitwise_or.at(out, g[: m - width + 1][hit], np.int16(bit))

    magnitude = np.abs(d)
    changed = d[1:] != d[:-1]
    for k in (1, 2, 3, 4):
        c, a = rule.pair(k)
        if 0 < c <= m:
            same_side = _window_all(d >= k, c) | _window_all(d <= -k, c)
            mark((magnitude[c - 1 :] == k) & same_side, c, _bit(k, False))
        if 0 < a <= m:
            ok = (magnitude[a - 1 :] == k) & _window_all(magnitude >= k, a)
            if a > 1:
                ok &= _window_all(changed, a - 1)
            mark(ok, a, _bit(k, True))
    if m >= TREND_WINDOW:
        up = _window_all(d[1:] > d[:-1], TREND_WINDOW - 1)
        down = _window_all(d[1:] < d[:-1], TREND_WINDOW - 1)
        mark(up | down, TREND_WINDOW, _TREND_BIT)
    return out


def alerts_of(fired: int, zones_to_monitor: Iterable[AlertZone | str]) -> frozenset[SpcAlert]:
    """The alerts of a fired mask, zone alerts kept only for monitored zones (the trend always), as
    `scouter.drift.spc.spc_column_alerts` reports them."""
    monitored = {z if isinstance(z, AlertZone) else AlertZone(z) for z in zones_to_monitor}
    alerts: set[SpcAlert] = set()
    for k in (1, 2, 3, 4):
        zone = AlertZone.for_level(k)
        if zone not in monitored:
            continue
        if fired & _bit(k, False):
            alerts.add(SpcAlert(zone, SpcAlertType.OUT_OF_BOUNDS if k == 4 else SpcAlertType.CONSECUTIVE))
        if fired & _bit(k, True):
            alerts.add(SpcAlert(zone, SpcAlertType.OUT_OF_BOUNDS if k == 4 else SpcAlertType.ALTERNATING))
    if fired & _TREND_BIT:
        alerts.add(SpcAlert(AlertZone.NOT_APPLICABLE, SpcAlertType.TREND))
    return frozenset(alerts)


@attrs.frozen(eq=False)
class SpcSegment:
    """The summary of a run of codes (newest first); see the module docstring."""

    n: int
    fired: int
    newest: npt.NDArray[np.int8]
    oldest: npt.NDArray[np.int8]

    @property
    def whole(self) -> bool:
        """Whether ``newest ++ oldest`` is every code of the segment."""
        return self.newest.shape[0] + self.oldest.shape[0] == self.n

    def kept(self) -> npt.NDArray[np.int8]:
        return np.concatenate((self.newest, self.oldest))


EMPTY = SpcSegment(0, 0, np.zeros(0, np.int8), np.zeros(0, np.int8))


def _cut(codes: npt.NDArray[np.int8], span: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    n = codes.shape[0]
    head = codes[:span]
    return head, codes[max(head.shape[0], n - span) :]


def segment_of(codes: npt.ArrayLike, rule: SpcRule) -> SpcSegment:
    """The summary of one run of codes (newest first)."""
    d = np.asarray(codes, dtype=np.int8)
    fired = int(fired_by_group(d, np.zeros(d.shape[0], np.int64), 1, rule)[0])
    newest, oldest = _cut(d, span_of(rule))
    return SpcSegment(d.shape[0], fired, newest.copy(), oldest.copy())


def concat(newer: SpcSegment, older: SpcSegment, rule: SpcRule) -> SpcSegment:
    """The summary of ``newer`` followed by ``older`` (the monoid's operation; `EMPTY` is its identity)."""
    if newer.n == 0:
        return older
    if older.n == 0:
        return newer
    span = span_of(rule)
    newer_last = newer.kept()[-span:]  # newer's last min(n, span) codes (a long segment's oldest has span codes)
    across = np.concatenate((newer_last, older.kept()[:span]))
    fired = newer.fired | older.fired | int(fired_by_group(across, np.zeros(across.shape[0], np.int64), 1, rule)[0])
    n = newer.n + older.n
    head = np.concatenate((newer.kept(), older.newest))[:span] if newer.whole else newer.newest
    last = np.concatenate((newer_last, older.kept()))[-span:] if older.whole else older.oldest
    keep = min(span, n - head.shape[0])  # oldest holds no code that head already holds
    return SpcSegment(n, fired, head.copy(), last[last.shape[0] - keep :].copy())


def fold_fired(parts: Sequence[SpcSegment | npt.NDArray[np.int8]], rule: SpcRule) -> int:
    """The fired mask of the sequence made of ``parts`` in order (newest first): each a summary, or the codes of a
    run read raw. One vectorised pass over the kept codes (see the module docstring)."""
    fired = 0
    pieces: list[npt.NDArray[np.int8]] = []
    sizes: list[int] = []
    groups: list[int] = []
    group = 0
    for part in parts:
        if isinstance(part, SpcSegment):
            if part.n == 0:
                continue
            fired |= part.fired
            pieces.append(part.newest)
            sizes.append(part.newest.shape[0])
            groups.append(group)
            if not part.whole:
                group += 1  # codes left out between newest and oldest: no window may cross here
            pieces.append(part.oldest)
            sizes.append(part.oldest.shape[0])
            groups.append(group)
        else:
            codes = np.asarray(part, dtype=np.int8)
            pieces.append(codes)
            sizes.append(codes.shape[0])
            groups.append(group)
    if not pieces:
        return fired
    by_group = fired_by_group(np.concatenate(pieces), np.repeat(groups, sizes), group + 1, rule)
    return fired | int(np.bitwise_or.reduce(by_group))
