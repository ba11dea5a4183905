"""Drift profiles as typed, frozen values (server.md §3.2): what the poller, evaluators, dispatcher and routes use.

`scouter.profiles` builds them from the profile documents (declared in `scouter.wire.v064_profiles`); ``raw`` keeps
the document as received, which is what is stored and sent back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, TypeAlias

import attrs

__all__ = [
    "ALERT_THRESHOLDS",
    "ALERT_ZONES",
    "BIN_TYPES",
    "DRIFT_TYPES",
    "PSI_THRESHOLD_KINDS",
    "ConsoleDispatch",
    "CustomAlertCondition",
    "CustomAlertConfig",
    "CustomDriftConfig",
    "CustomDriftProfile",
    "DispatchConfig",
    "DriftProfile",
    "OpsGenieDispatch",
    "ProfileError",
    "PsiAlertConfig",
    "PsiBin",
    "PsiDriftConfig",
    "PsiDriftProfile",
    "PsiFeatureProfile",
    "PsiThreshold",
    "SlackDispatch",
    "SpcAlertConfig",
    "SpcAlertRule",
    "SpcDriftConfig",
    "SpcDriftProfile",
    "SpcFeatureLimits",
]

DRIFT_TYPES: Final = ("Spc", "Psi", "Custom")
ALERT_ZONES: Final = ("Zone1", "Zone2", "Zone3", "Zone4", "NotApplicable")
ALERT_THRESHOLDS: Final = ("Below", "Above", "Outside")
PSI_THRESHOLD_KINDS: Final = ("ChiSquare", "Normal", "Fixed")
BIN_TYPES: Final = ("Numeric", "Category")


class ProfileError(ValueError):
    """A drift profile that cannot be parsed; the message names the path and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- dispatch -----------------------------------------------------------------------------------------------------


@attrs.frozen
class ConsoleDispatch:
    """``{"Console": {"enabled": true}}``: alerts are logged."""

    enabled: bool


@attrs.frozen
class SlackDispatch:
    """``{"Slack": {"channel": "..."}}``."""

    channel: str


@attrs.frozen
class OpsGenieDispatch:
    """``{"OpsGenie": {"team": "...", "priority": "P5"}}``."""

    team: str
    priority: str


# A variant this server does not know is kept as its raw tagged dict, e.g. {"Teams": {...}}: a later client may
# send one, and the profile stays usable (the dispatcher can fall back to logging).
DispatchConfig: TypeAlias = ConsoleDispatch | SlackDispatch | OpsGenieDispatch | dict[str, Any]


# --- SPC ----------------------------------------------------------------------------------------------------------


@attrs.frozen
class SpcFeatureLimits:
    """Control limits of one feature: center ± 1, 2, 3 sigma."""

    id: str
    center: float
    one_ucl: float
    one_lcl: float
    two_ucl: float
    two_lcl: float
    three_ucl: float
    three_lcl: float
    timestamp: datetime


@attrs.frozen
class SpcAlertRule:
    """The 8-number rule string (e.g. ``"8 16 4 8 2 4 1 1"``) and the zones whose alerts are kept."""

    rule: str
    zones_to_monitor: tuple[str, ...]


@attrs.frozen
class SpcAlertConfig:
    rule: SpcAlertRule
    schedule: str
    features_to_monitor: tuple[str, ...]
    dispatch_config: DispatchConfig


@attrs.frozen
class SpcDriftConfig:
    sample_size: int
    sample: bool
    space: str
    name: str
    version: str
    alert_config: SpcAlertConfig
    feature_map: Mapping[str, Mapping[str, int]]
    drift_type: str


class _Common:
    """Accessors shared by the three profile kinds; each defines ``config`` (and ``raw``) as attrs fields."""

    __slots__ = ()
    config: Any

    @property
    def space(self) -> str:
        space: str = self.config.space
        return space

    @property
    def name(self) -> str:
        name: str = self.config.name
        return name

    @property
    def version(self) -> str:
        version: str = self.config.version
        return version

    @property
    def schedule(self) -> str:
        """The cron string (seconds first) of ``config.alert_config.schedule``."""
        schedule: str = self.config.alert_config.schedule
        return schedule

    @property
    def dispatch_config(self) -> DispatchConfig:
        dispatch: DispatchConfig = self.config.alert_config.dispatch_config
        return dispatch


@attrs.frozen
class SpcDriftProfile(_Common):
    """An SPC profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Spc"

    features: Mapping[str, SpcFeatureLimits]
    config: SpcDriftConfig
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.features_to_monitor

    @property
    def rule(self) -> str:
        return self.config.alert_config.rule.rule

    @property
    def zones_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.rule.zones_to_monitor


# --- PSI ----------------------------------------------------------------------------------------------------------


@attrs.frozen
class PsiBin:
    """One bin; limits are None for categorical bins and may be ±inf for the outer numeric ones."""

    id: int
    lower_limit: float | None
    upper_limit: float | None
    proportion: float


@attrs.frozen
class PsiFeatureProfile:
    id: str
    bins: tuple[PsiBin, ...]
    timestamp: datetime
    bin_type: str  # "Numeric" | "Category"


@attrs.frozen
class PsiThreshold:
    """How the alert threshold is found: ``kind`` ChiSquare or Normal with ``value`` = alpha, or Fixed."""

    kind: str
    value: float


@attrs.frozen
class PsiAlertConfig:
    schedule: str
    features_to_monitor: tuple[str, ...]
    dispatch_config: DispatchConfig
    threshold: PsiThreshold


@attrs.frozen
class PsiDriftConfig:
    space: str
    name: str
    version: str
    alert_config: PsiAlertConfig
    feature_map: Mapping[str, Mapping[str, int]]
    drift_type: str
    categorical_features: tuple[str, ...] | None


@attrs.frozen
class PsiDriftProfile(_Common):
    """A PSI profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Psi"

    features: Mapping[str, PsiFeatureProfile]
    config: PsiDriftConfig
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.features_to_monitor

    @property
    def threshold(self) -> PsiThreshold:
        return self.config.alert_config.threshold

    def bins(self, feature: str) -> tuple[PsiBin, ...]:
        """The profile bins of `feature` (KeyError if the profile has no such feature)."""
        return self.features[feature].bins


# --- Custom -------------------------------------------------------------------------------------------------------


@attrs.frozen
class CustomAlertCondition:
    """A metric's condition in either spelling: 0.6.4 ``alert_threshold_value``, 0.25 ``delta`` (the same margin)
    and ``baseline_value`` (0.6.4 took the baseline from the profile's ``metrics``)."""

    alert_threshold: str  # "Below" | "Above" | "Outside"
    alert_threshold_value: float | None
    baseline_value: float | None = None


@attrs.frozen
class CustomAlertConfig:
    dispatch_config: DispatchConfig
    schedule: str
    alert_conditions: Mapping[str, CustomAlertCondition] | None


@attrs.frozen
class CustomDriftConfig:
    sample_size: int
    space: str
    name: str
    version: str
    alert_config: CustomAlertConfig
    drift_type: str


@attrs.frozen
class CustomDriftProfile(_Common):
    """A custom-metric profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Custom"

    config: CustomDriftConfig
    metrics: Mapping[str, float]  # metric name -> training (baseline) value
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        """The metric names: a custom profile monitors every metric it defines."""
        return tuple(self.metrics)

    @property
    def alert_conditions(self) -> dict[str, tuple[str, float | None]]:
        """``{metric: (alert_threshold, alert_threshold_value or None)}``; empty when the profile has none."""
        conditions = self.config.alert_config.alert_conditions or {}
        return {name: (c.alert_threshold, c.alert_threshold_value) for name, c in conditions.items()}

    @property
    def baselines(self) -> dict[str, float]:
        """Each metric's baseline: the condition's ``baseline_value`` (0.25), else the profile's ``metrics`` value."""
        baselines = dict(self.metrics)
        for name, condition in (self.config.alert_config.alert_conditions or {}).items():
            if condition.baseline_value is not None:
                baselines[name] = condition.baseline_value
        return baselines


DriftProfile: TypeAlias = SpcDriftProfile | PsiDriftProfile | CustomDriftProfile
