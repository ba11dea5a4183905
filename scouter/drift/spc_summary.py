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
from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from .spc import TREND_WINDOW, SpcLimits, SpcRule, fired_by_group

__all__ = [
    "EMPTY",
    "MAX_SPAN",
    "NO_LIMITS",
    "SpcSegment",
    "concat",
    "feature_stamp",
    "fold_fired",
    "kept_ends",
    "segment_of",
    "span_of",
]

#: Rules whose longest window exceeds this many points + 1 get no summaries (their rows are read raw): a summary
#: keeps up to 2 x span codes.
MAX_SPAN = 255

#: Limits that give every value the code 0 (NaN compares false everywhere), as a feature without limits gets.
NO_LIMITS = SpcLimits(*(math.nan,) * 7)


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


def kept_ends(codes: npt.NDArray[np.int8], span: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    """A run's ``newest`` and ``oldest`` codes (views): its first `span`, then its last ones not among them."""
    n = codes.shape[0]
    head = codes[:span]
    return head, codes[max(head.shape[0], n - span) :]


def segment_of(codes: npt.ArrayLike, rule: SpcRule) -> SpcSegment:
    """The summary of one run of codes (newest first)."""
    d = np.asarray(codes, dtype=np.int8)
    fired = int(fired_by_group(d, np.zeros(d.shape[0], np.int64), 1, rule)[0])
    newest, oldest = kept_ends(d, span_of(rule))
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
