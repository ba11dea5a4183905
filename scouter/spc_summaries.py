"""The writer's side of the SPC summaries (pure): what one transaction's SPC rows summarise to.

Per (entity, feature) of the transaction, its rows sorted by created_at (ties by value, as the raw check orders
them: NaN after every number, as PostgreSQL sorts it), judged with the entity's SPC profile as the writer knows it:
zone codes against the feature's limits (none: all 0), the fired mask, the kept codes at both ends
(`scouter.drift.spc_summary`), and the stamp of the limits and rule used. Entities without an SPC profile (or whose
rule is bad or too long to summarise) get no summary: their rows are read raw. All groups sharing a rule are judged
in one vectorised pass, so a transaction of many small groups costs a few numpy calls, not a few per group.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import attrs
import numpy as np

from .drift.spc import SpcLimits, SpcRule, SpcRuleError, fired_by_group, parse_spc_rule, zone_codes
from .drift.spc_summary import MAX_SPAN, NO_LIMITS, feature_stamp, kept_ends, span_of
from .profiles import SpcDriftProfile

__all__ = ["EntityLimits", "entity_limits", "profile_limits", "summarize"]

Entity = tuple[str, str, str]  # space, name, version


@attrs.frozen
class EntityLimits:
    """What an entity's rows are judged with: the parsed rule, and per feature its limits and stamp."""

    rule: SpcRule
    features: Mapping[str, tuple[SpcLimits, int]]
    no_limits_stamp: int

    def of(self, feature: str) -> tuple[SpcLimits, int]:
        return self.features.get(feature) or (NO_LIMITS, self.no_limits_stamp)


def profile_limits(profile: SpcDriftProfile) -> dict[str, SpcLimits]:
    """Each feature's control limits, as the check reads them."""
    return {
        feature: SpcLimits(f.center, f.one_ucl, f.one_lcl, f.two_ucl, f.two_lcl, f.three_ucl, f.three_lcl)
        for feature, f in profile.features.items()
    }


def entity_limits(profile: SpcDriftProfile) -> EntityLimits | None:
    """None when the profile's rows cannot be summarised (a bad rule, or windows longer than `MAX_SPAN` + 1)."""
    try:
        rule = parse_spc_rule(profile.rule)
    except SpcRuleError:
        return None
    if span_of(rule) > MAX_SPAN:
        return None
    limits = profile_limits(profile)
    features = {feature: (lim, feature_stamp(lim, rule)) for feature, lim in limits.items()}
    return EntityLimits(rule, features, feature_stamp(None, rule))


_GROUP = itemgetter(2, 1, 3, 4)  # space, name, version, feature
_TIME = itemgetter(0)
_VALUE = itemgetter(5)


def _order(row: Sequence[Any]) -> tuple[Any, bool, float]:
    value = row[5]
    nan = math.isnan(value)
    return (row[0], nan, 0.0 if nan else value)


def summarize(rows: Iterable[Sequence[Any]], limits_of: Mapping[Entity, EntityLimits | None]) -> list[tuple[Any, ...]]:
    """Rows for ``scouter.spc_summary`` (`SPC_SUMMARY_COLUMNS`) from one transaction's SPC rows in
    `scouter.records.SPC_COLUMNS` order: (created_at, name, space, version, feature, value)."""
    groups: dict[tuple[str, str, str, str], list[Sequence[Any]]] = {}
    for row in rows:
        groups.setdefault(_GROUP(row), []).append(row)
    by_rule: dict[SpcRule, list[tuple[tuple[str, str, str, str], list[Sequence[Any]], SpcLimits, int]]] = {}
    for key, members in groups.items():
        known = limits_of.get(key[:3])
        if known is None:
            continue
        members.sort(key=_TIME)
        if len(set(map(_TIME, members))) != len(members):  # equal created_at: ordered by value, as the raw check
            members.sort(key=_order)
        lim, stamp = known.of(key[3])
        by_rule.setdefault(known.rule, []).append((key, members, lim, stamp))
    out: list[tuple[Any, ...]] = []
    for rule, judged in by_rule.items():
        span = span_of(rule)
        sizes = np.array([len(members) for _, members, _, _ in judged], dtype=np.int64)
        values = np.array([v for _, members, _, _ in judged for v in map(_VALUE, reversed(members))], np.float64)
        per_row = [np.repeat(np.array([attrs.astuple(lim)[i] for _, _, lim, _ in judged]), sizes) for i in range(7)]
        codes = zone_codes(values, SpcLimits(*per_row))  # type: ignore[arg-type]  # arrays broadcast like floats
        group = np.repeat(np.arange(len(judged), dtype=np.int64), sizes)
        fired = fired_by_group(codes, group, len(judged), rule)
        offset = 0
        for (key, members, _, stamp), n, mask in zip(judged, sizes.tolist(), fired.tolist(), strict=True):
            column = codes[offset : offset + n]
            offset += n
            head, tail = kept_ends(column, span)
            first, last = members[0][0], members[-1][0]
            out.append((*key, first, last, n, stamp, mask, head.tobytes(), tail.tobytes()))
    return out
