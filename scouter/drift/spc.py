"""SPC drift: zone codes against control limits and the zone/trend alert rule (spec §6.3, §5.4).

Everything here is pure. Values arrive per feature **newest first** (upstream's order, which decides which point of
a window must sit exactly in zone k, §12 #20). Rule evaluation is vectorised with numpy: each (zone, kind) check is
a sliding-window "all true" test done with cumulative sums, so a column costs O(n) per zone instead of O(n·window).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import attrs
import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_SPC_RULE",
    "AlertZone",
    "SpcAlert",
    "SpcAlertType",
    "SpcLimits",
    "SpcRule",
    "SpcRuleError",
    "alerts_of",
    "cut_to_shortest",
    "evaluate_spc",
    "fired_by_group",
    "parse_spc_rule",
    "spc_alert_maps",
    "spc_column_alerts",
    "zone_codes",
]

DEFAULT_SPC_RULE = "8 16 4 8 2 4 1 1"
TREND_WINDOW = 7  # upstream's fixed trend window: 7 points, i.e. 6 neighbour comparisons

_T = TypeVar("_T")


class SpcRuleError(ValueError):
    """The SPC rule string is not 8 integers separated by single spaces."""


class AlertZone(enum.Enum):
    """`AlertZone`; the value is the JSON encoding, `display` the Rust `Display` form used in alert maps."""

    ZONE1 = "Zone1"
    ZONE2 = "Zone2"
    ZONE3 = "Zone3"
    ZONE4 = "Zone4"
    NOT_APPLICABLE = "NotApplicable"

    @property
    def display(self) -> str:
        return _ZONE_DISPLAY[self]

    @classmethod
    def for_level(cls, k: int) -> AlertZone:
        """Zone of rule level k (1..4)."""
        return _ZONE_BY_LEVEL[k]


_ZONE_DISPLAY = {
    AlertZone.ZONE1: "Zone 1",
    AlertZone.ZONE2: "Zone 2",
    AlertZone.ZONE3: "Zone 3",
    AlertZone.ZONE4: "Zone 4",
    AlertZone.NOT_APPLICABLE: "NA",
}
_ZONE_BY_LEVEL = {1: AlertZone.ZONE1, 2: AlertZone.ZONE2, 3: AlertZone.ZONE3, 4: AlertZone.ZONE4}


class SpcAlertType(enum.Enum):
    """`SpcAlertType`; the value is the JSON encoding, `display` the Rust `Display` form used in alert maps."""

    OUT_OF_BOUNDS = "OutOfBounds"
    CONSECUTIVE = "Consecutive"
    ALTERNATING = "Alternating"
    ALL_GOOD = "AllGood"
    TREND = "Trend"

    @property
    def display(self) -> str:
        return _KIND_DISPLAY[self]


_KIND_DISPLAY = {
    SpcAlertType.OUT_OF_BOUNDS: "Out of bounds",
    SpcAlertType.CONSECUTIVE: "Consecutive",
    SpcAlertType.ALTERNATING: "Alternating",
    SpcAlertType.ALL_GOOD: "All good",
    SpcAlertType.TREND: "Trend",
}
_ZONE_ORDER = {zone: i for i, zone in enumerate(AlertZone)}
_KIND_ORDER = {kind: i for i, kind in enumerate(SpcAlertType)}


@attrs.frozen(order=False)
class SpcAlert:
    """One (zone, kind) alert of a feature."""

    zone: AlertZone
    kind: SpcAlertType

    def sort_key(self) -> tuple[int, int]:
        """Deterministic order for messages: by zone, then by kind (upstream iterates a HashSet)."""
        return (_ZONE_ORDER[self.zone], _KIND_ORDER[self.kind])

    def as_map(self, feature: str) -> dict[str, str]:
        """The `drift_alert.alert` map: `{"entity_name", "kind", "zone"}`, display strings."""
        return {"entity_name": feature, "kind": self.kind.display, "zone": self.zone.display}


@attrs.frozen
class SpcLimits:
    """A feature's control limits from its `SpcFeatureDriftProfile`."""

    center: float
    one_ucl: float
    one_lcl: float
    two_ucl: float
    two_lcl: float
    three_ucl: float
    three_lcl: float


@attrs.frozen
class SpcRule:
    """Parsed rule: (consecutive C, alternating A) for zones 1..4; a value <= 0 disables that check."""

    consecutive: tuple[int, int, int, int]
    alternating: tuple[int, int, int, int]

    def pair(self, k: int) -> tuple[int, int]:
        """(C, A) of zone level k (1..4)."""
        return (self.consecutive[k - 1], self.alternating[k - 1])


# Rust's `str::parse::<i32>` accepts an optional sign and ASCII digits only; Python's int() would also take
# surrounding spaces and underscores, which upstream rejects.
_INT_TOKEN = re.compile(r"[+-]?[0-9]+")
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def parse_spc_rule(rule: str) -> SpcRule:
    """Parse `"8 16 4 8 2 4 1 1"`: exactly 8 integers separated by single spaces, else `SpcRuleError`.

    Upstream casts each i32 to usize; a negative count then never fires, so negatives are kept and act as disabled.
    """
    tokens = rule.split(" ")
    if len(tokens) != 8:
        raise SpcRuleError(f"SPC rule must be 8 integers separated by single spaces, got {len(tokens)} in {rule!r}")
    values: list[int] = []
    for token in tokens:
        if not _INT_TOKEN.fullmatch(token) or not _I32_MIN <= int(token) <= _I32_MAX:
            raise SpcRuleError(f"SPC rule item {token!r} is not a 32-bit integer in {rule!r}")
        values.append(int(token))
    return SpcRule(
        consecutive=(values[0], values[2], values[4], values[6]),
        alternating=(values[1], values[3], values[5], values[7]),
    )


def zone_codes(values: npt.ArrayLike, limits: SpcLimits | None) -> npt.NDArray[np.int8]:
    """Zone code (-4..4) of each value against `limits`, exactly per the table of §6.3.

    The conditions are tried in upstream's order and the first match wins, which settles degenerate limits (e.g. a
    zero sigma). Anything matching none of them (v == center, v == three_ucl, v == three_lcl, NaN) is 0, and so is
    every value of a feature without limits.
    """
    v = np.asarray(values, dtype=np.float64)
    if limits is None:
        return np.zeros(v.shape, dtype=np.int8)
    lim = limits
    with np.errstate(invalid="ignore"):  # NaN compares false everywhere, as in Rust
        conditions = [
            v > lim.three_ucl,
            v < lim.three_lcl,
            (v < lim.three_ucl) & (v >= lim.two_ucl),
            (v < lim.two_ucl) & (v >= lim.one_ucl),
            (v < lim.one_ucl) & (v > lim.center),
            (v > lim.three_lcl) & (v <= lim.two_lcl),
            (v > lim.two_lcl) & (v <= lim.one_lcl),
            (v > lim.one_lcl) & (v < lim.center),
        ]
    return np.select(conditions, [4, -4, 3, 2, 1, -3, -2, -1], default=0).astype(np.int8)


def _window_all(flags: npt.NDArray[np.bool_], width: int) -> npt.NDArray[np.bool_]:
    """out[j] is True when flags[j .. j+width) are all True; length len(flags) - width + 1 (1 <= width <= n)."""
    n = flags.shape[0]
    cs = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return (cs[width:] - cs[: n - width + 1]) == width


# Bits of a fired mask: zones 1-3 consecutive/alternating, zone 4 (both kinds are OutOfBounds), the trend.
_TREND_BIT = 1 << 7
_ZONE4_BIT = 1 << 6


def _bit(k: int, alternating: bool) -> int:
    return _ZONE4_BIT if k == 4 else 1 << (2 * (k - 1) + int(alternating))


def fired_by_group(codes: npt.ArrayLike, group: npt.ArrayLike, groups: int, rule: SpcRule) -> npt.NDArray[np.int16]:
    """Per group, the mask of the rules some window of its codes (newest first) fires, before the zone filter;
    ``group`` (non-decreasing) says which group each code belongs to, and only windows inside one group count. One
    pass over all groups' codes, whatever their number (`scouter.drift.spc_summary` judges many runs at once).

    A rule fires at index i when the window of its width ending at i lies inside the sequence (upstream's
    ``i + 1 >= C``) and:

    * consecutive (zone k, width C): |d[i]| == k and every point of the window is >= k, or every one <= -k (upstream
      counts them and fires at a count >= C, i.e. all of them);
    * alternating (zone k, width A): |d[i]| == k and upstream's scan of the window reaches A, which it does only if
      every point counts: |x| >= k (so not 0) and each differs from its predecessor inside the window (the first
      one is compared with the scan's initial 0);
    * trend: 7 codes with 6 strict increases or 6 strict decreases between neighbours.

    The codes keep their dtype: they are normally integral, but upstream's rule works on f64 and its tests feed
    e.g. 1.1.
    """
    d = np.asarray(codes)
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
    changed = d[1:] != d[:-1]  # changed[j] compares d[j+1] with d[j]
    for k in (1, 2, 3, 4):
        c, a = rule.pair(k)
        if 0 < c <= m:
            same_side = _window_all(d >= k, c) | _window_all(d <= -k, c)
            mark((magnitude[c - 1 :] == k) & same_side, c, _bit(k, False))
        if 0 < a <= m:
            ok = (magnitude[a - 1 :] == k) & _window_all(magnitude >= k, a)
            if a > 1:  # a window starting at s needs changed[s .. s+a-1), i.e. a - 1 flags
                ok &= _window_all(changed, a - 1)
            mark(ok, a, _bit(k, True))
    if m >= TREND_WINDOW:
        up = _window_all(d[1:] > d[:-1], TREND_WINDOW - 1)
        down = _window_all(d[1:] < d[:-1], TREND_WINDOW - 1)
        mark(up | down, TREND_WINDOW, _TREND_BIT)
    return out


def _zone_set(zones_to_monitor: Iterable[AlertZone | str]) -> frozenset[AlertZone]:
    return frozenset(z if isinstance(z, AlertZone) else AlertZone(z) for z in zones_to_monitor)


def alerts_of(fired: int, zones_to_monitor: Iterable[AlertZone | str]) -> frozenset[SpcAlert]:
    """The alerts of a fired mask: a zone-k alert only if its zone is monitored, zone-4 alerts always of kind
    `OutOfBounds`, the trend whatever the filter."""
    monitored = _zone_set(zones_to_monitor)
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


def spc_column_alerts(
    codes: npt.ArrayLike,
    rule: SpcRule | str = DEFAULT_SPC_RULE,
    zones_to_monitor: Iterable[AlertZone | str] = (AlertZone.ZONE1, AlertZone.ZONE2, AlertZone.ZONE3, AlertZone.ZONE4),
) -> frozenset[SpcAlert]:
    """Alerts of one feature column of zone codes (newest first): the zone rule plus the trend rule.

    `zones_to_monitor` takes `AlertZone` members or their JSON strings ("Zone1"); see `alerts_of`.
    """
    parsed = parse_spc_rule(rule) if isinstance(rule, str) else rule
    d = np.asarray(codes, dtype=np.float64)
    fired = int(fired_by_group(d, np.zeros(d.shape[0], np.int64), 1, parsed)[0])
    return alerts_of(fired, zones_to_monitor)


def evaluate_spc(
    values_by_feature: Mapping[str, npt.ArrayLike],
    limits_by_feature: Mapping[str, SpcLimits],
    rule: SpcRule | str = DEFAULT_SPC_RULE,
    zones_to_monitor: Iterable[AlertZone | str] = (AlertZone.ZONE1, AlertZone.ZONE2, AlertZone.ZONE3, AlertZone.ZONE4),
) -> dict[str, frozenset[SpcAlert]]:
    """Per feature (values newest first), its set of alerts; a feature without limits gets all-zero codes.

    The rule is parsed once up front, so a bad rule raises `SpcRuleError` even when there is no data.
    """
    parsed = parse_spc_rule(rule) if isinstance(rule, str) else rule
    monitored = _zone_set(zones_to_monitor)
    return {
        feature: spc_column_alerts(zone_codes(values, limits_by_feature.get(feature)), parsed, monitored)
        for feature, values in values_by_feature.items()
    }


def cut_to_shortest(columns: Mapping[str, Sequence[_T]]) -> dict[str, list[_T]]:
    """§5.4 matrix prep: features in alphabetical order, every column cut to the shortest length, keeping the
    newest N (columns are newest first, so the first N)."""
    if not columns:
        return {}
    n = min(len(col) for col in columns.values())
    return {feature: list(columns[feature][:n]) for feature in sorted(columns)}


def spc_alert_maps(alerts_by_feature: Mapping[str, Iterable[SpcAlert]]) -> list[dict[str, str]]:
    """One `drift_alert` map per (feature, alert), features alphabetical, alerts in zone/kind order."""
    return [
        alert.as_map(feature)
        for feature in sorted(alerts_by_feature)
        for alert in sorted(alerts_by_feature[feature], key=SpcAlert.sort_key)
    ]
