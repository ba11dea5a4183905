"""What an alert message says (spec §7): upstream's description per dispatcher style and, besides it, why the alert
fired: the rule or threshold, the window of data the check read, the sample size, and the link-friendly ids of its
alerts (``scouter-alert-<id>``, plus the ``GET /scouter/alerts`` query that finds them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from scouter.alerts import (
    DispatchStyle,
    custom_description,
    custom_reason,
    psi_description,
    psi_reason,
    spc_description,
    spc_reason,
)
from scouter.binned import rfc3339
from scouter.checks import psi_threshold_of
from scouter.drift import (
    DEFAULT_SPC_RULE,
    AlertThreshold,
    AlertZone,
    CustomMetricAlert,
    PsiFeatureAlert,
    SpcAlert,
    SpcAlertType,
)
from scouter.profiles import CustomDriftProfile, PsiDriftProfile, SpcDriftProfile

from ._messages import AlertRow, CheckFacts, Message, alert_ref

_ZONES = {zone.display: zone for zone in AlertZone}
_KINDS = {kind.display: kind for kind in SpcAlertType}


def _text(alert: Mapping[str, Any], key: str) -> str:
    value = alert[key]
    if not isinstance(value, str):
        raise TypeError(f"alert field {key!r} is not a string")
    return value


def _spc_alert(row: AlertRow) -> SpcAlert:
    return SpcAlert(_ZONES[_text(row.alert, "zone")], _KINDS[_text(row.alert, "kind")])


def _psi_alert(row: AlertRow, facts: CheckFacts, profile: PsiDriftProfile | None) -> PsiFeatureAlert:
    feature = row.entity_name
    bins = len(profile.features[feature].bins) if profile is not None and feature in profile.features else None
    return PsiFeatureAlert(
        feature, float(_text(row.alert, "psi")), float(_text(row.alert, "threshold")), facts.samples.get(feature), bins
    )


def _custom_alert(row: AlertRow) -> CustomMetricAlert:
    margin = _text(row.alert, "alert_threshold_value")
    return CustomMetricAlert(
        row.entity_name,
        float(_text(row.alert, "training_metric_value")),
        float(_text(row.alert, "observed_metric_value")),
        AlertThreshold(_text(row.alert, "alert_threshold")),
        None if margin == "None" else float(margin),
    )


@attrs.frozen
class Content:
    """What every channel's message of one `Message` is made of."""

    message: Message
    #: Upstream's description text per dispatcher style (§7).
    descriptions: Mapping[DispatchStyle, str]
    #: One line per alert: which rule or threshold fired, on how much data.
    reasons: tuple[str, ...]
    #: The window of data the check read, and the schedule.
    window: str
    #: The alerts' ids and where to find them.
    reference: str

    @property
    def why(self) -> str:
        """The plain-text "why it fired" section appended to Console and OpsGenie messages."""
        lines = ["Why it fired:", *(f"  - {reason}" for reason in self.reasons), self.window, self.reference]
        return "\n".join(lines) + "\n"

    @property
    def summary(self) -> str:
        return f"Drift detected for {self.message.entity}"

    @property
    def alerts_path(self) -> str:
        return alerts_path(self.message)


def alerts_path(message: Message) -> str:
    """``/scouter/alerts?...``: the client's query that returns this message's alerts (and newer ones)."""
    query = urlencode(
        {
            "name": message.name,
            "space": message.space,
            "version": message.version,
            "limit_datetime": rfc3339(message.created_at),
        }
    )
    return f"/scouter/alerts?{query}"


def _spc_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    by_feature: dict[str, set[SpcAlert]] = {}
    for row in message.alerts:
        by_feature.setdefault(row.entity_name, set()).add(_spc_alert(row))
    profile = facts.profile if isinstance(facts.profile, SpcDriftProfile) else None
    rule = profile.rule if profile is not None else DEFAULT_SPC_RULE
    sample_size = profile.config.sample_size if profile is not None else None
    reasons = []
    for feature in sorted(by_feature):
        points = facts.samples.get(feature)
        tail = f"; {points} points in the window" if points is not None else ""
        reasons += [
            spc_reason(feature, a, rule, sample_size) + tail for a in sorted(by_feature[feature], key=SpcAlert.sort_key)
        ]
    return {style: spc_description(by_feature, style) for style in DispatchStyle}, reasons


def _psi_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    profile = facts.profile if isinstance(facts.profile, PsiDriftProfile) else None
    threshold = psi_threshold_of(profile.threshold) if profile is not None else None
    alerts = sorted((_psi_alert(row, facts, profile) for row in message.alerts), key=lambda a: a.feature)
    reasons = [psi_reason(alert, threshold) for alert in alerts]
    return {style: psi_description(alerts, style) for style in DispatchStyle}, reasons


def _custom_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    profile = facts.profile if isinstance(facts.profile, CustomDriftProfile) else None
    alerts = [_custom_alert(row) for row in message.alerts]
    reasons = []
    for alert in alerts:
        records = facts.samples.get(alert.metric)
        line = custom_reason(alert)
        if records is not None:
            line += f"; the observed value is the mean of {records} records in the window"
            if profile is not None:
                line += f", each averaging {profile.config.sample_size} values"
        reasons.append(line)
    return {style: "".join(custom_description(a, style) for a in alerts) for style in DispatchStyle}, reasons


def _generic_content(message: Message) -> tuple[dict[DispatchStyle, str], list[str]]:
    """For alert maps this server cannot read as their drift type: every field as stored."""
    lines = []
    for row in message.alerts:
        fields = ", ".join(f"{key}: {value}" for key, value in sorted(row.alert.items()) if key != "entity_name")
        lines.append(f"{row.entity_name}: {fields}" if fields else row.entity_name)
    description = f"{message.drift_type} drift alerts:\n" + "".join(f"    {line}\n" for line in lines)
    return {style: description for style in DispatchStyle}, lines


_CONTENT = {"Spc": _spc_content, "Psi": _psi_content, "Custom": _custom_content}


def render(message: Message, facts: CheckFacts) -> Content:
    """The texts of `message`; alert maps that do not read as their drift type are shown field by field."""
    build = _CONTENT.get(message.drift_type)
    try:
        if build is None:
            raise ValueError(f"unknown drift type {message.drift_type!r}")
        descriptions, reasons = build(message, facts)
    except (KeyError, ValueError, TypeError):
        descriptions, reasons = _generic_content(message)
    end = rfc3339(message.created_at)
    start = message.window_start
    window = f"Window: records after {rfc3339(start)} up to {end}" if start else f"Window: every record up to {end}"
    if facts.schedule:
        window += f" (schedule {facts.schedule})"
    refs = ", ".join(alert_ref(i) for i in message.ids)
    reference = f"Alert IDs: {refs} (GET {alerts_path(message)})"
    return Content(message, descriptions, tuple(reasons), window, reference)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
