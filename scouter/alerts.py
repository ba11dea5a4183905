"""Alert message formatting (spec §7): description texts per dispatcher style, the Console text, the Slack
`chat.postMessage` body, the OpsGenie alert body, and a one-line "why it fired" per alert for extra channels.

Pure: the dispatch actor does the sending. Numbers are written in Rust `Display` form (`rust_float_str`), as
upstream's `format!("{}", f64)` does. Where upstream iterates a HashMap or HashSet, features are written in
alphabetical order and a feature's alerts in zone/kind order, so messages are deterministic.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from scouter.drift.custom import AlertThreshold, CustomMetricAlert
from scouter.drift.psi import (
    ChiSquareThreshold,
    FixedThreshold,
    NormalThreshold,
    PsiFeatureAlert,
    PsiThreshold,
    rust_float_str,
)
from scouter.drift.spc import DEFAULT_SPC_RULE, SpcAlert, SpcAlertType, SpcRule, parse_spc_rule

__all__ = [
    "DEFAULT_OPSGENIE_PRIORITY",
    "DispatchStyle",
    "console_text",
    "custom_description",
    "custom_reason",
    "opsgenie_body",
    "psi_description",
    "psi_reason",
    "slack_body",
    "spc_description",
    "spc_reason",
]

DEFAULT_OPSGENIE_PRIORITY = "P5"


class DispatchStyle(enum.Enum):
    """Which dispatcher a description is written for (the `AlertDispatchConfig` variant name)."""

    CONSOLE = "Console"
    SLACK = "Slack"
    OPSGENIE = "OpsGenie"


_SPC_HEADER = {
    DispatchStyle.CONSOLE: "Features that have drifted: \n",
    DispatchStyle.SLACK: "Drift has been detected for the following features:\n",
    DispatchStyle.OPSGENIE: "Drift has been detected for the following features:\n",
}
_PSI_HEADER = "PSI Drift has been detected for the following features:\n"


def spc_description(alerts_by_feature: Mapping[str, Iterable[SpcAlert]], style: DispatchStyle) -> str:
    """SPC description: header, then per alerting feature its name line and one entry per alert; "" if none.

    Fixes upstream bug #21 (header only when the first feature in HashMap order had alerts): the header is written
    whenever any feature has alerts.
    """
    parts: list[str] = []
    for feature in sorted(alerts_by_feature):
        alerts = sorted(alerts_by_feature[feature], key=SpcAlert.sort_key)
        if not alerts:
            continue
        if not parts:
            parts.append(_SPC_HEADER[style])
        if style is DispatchStyle.SLACK:
            parts.append(f"{feature}: \n")
            parts.extend(f"    {a.kind.display} error in {a.zone.display}\n" for a in alerts)
        else:
            parts.append(f"    {feature}: \n")
            parts.extend(f"        Kind: {a.kind.display}\n        Zone: {a.zone.display}\n" for a in alerts)
    return "".join(parts)


def psi_description(alerts: Iterable[PsiFeatureAlert], style: DispatchStyle) -> str:
    """PSI description: one header for all dispatchers, then per alerting feature its name and drift line."""
    parts: list[str] = []
    name_indent, detail_indent = ("", "    ") if style is DispatchStyle.SLACK else ("    ", "        ")
    for alert in alerts:
        if not parts:
            parts.append(_PSI_HEADER)
        parts.append(f"{name_indent}{alert.feature}: \n")
        parts.append(
            f"{detail_indent}Drift Value: Feature '{alert.feature}' has experienced drift, with a current PSI score of"
            f" {rust_float_str(alert.psi)} that exceeds the configured threshold of"
            f" {rust_float_str(alert.threshold)}.\n"
        )
    return "".join(parts)


def _custom_header(alert: CustomMetricAlert) -> str:
    m, b = alert.metric, alert.alert_threshold_value
    if alert.alert_threshold is AlertThreshold.BELOW:
        if b is not None:
            return (
                f"The observed {m} metric value has dropped below the threshold (initial value - {rust_float_str(b)})"
            )
        return f"The {m} metric value has dropped below the initial value"
    if alert.alert_threshold is AlertThreshold.ABOVE:
        if b is not None:
            return f"The {m} metric value has increased beyond the threshold (initial value + {rust_float_str(b)})"
        return f"The {m} metric value has increased beyond the initial value"
    if b is not None:
        return f"The {m} metric value has fallen outside the threshold (initial value ± {rust_float_str(b)})"
    return f"The metric value has fallen outside the initial value for {m}"


def custom_description(alert: CustomMetricAlert, style: DispatchStyle = DispatchStyle.CONSOLE) -> str:
    """Custom-metric description (one message per alerting metric); identical for every dispatcher upstream."""
    del style  # upstream has a TODO to vary it per dispatcher; it does not
    return (
        f"{_custom_header(alert)}\n"
        f"Initial Metric Value: {rust_float_str(alert.training_value)}\n"
        f"Current Metric Value: {rust_float_str(alert.observed_value)}\n"
    )


def console_text(space: str, name: str, version: str, description: str) -> str | None:
    """What the Console dispatcher prints (print adds the final newline), or None for an empty description."""
    if not description:
        return None
    return f"\nDrift detected for {space}/{name}/{version}! \n{description}"


def slack_body(channel: str, space: str, name: str, version: str, description: str) -> dict[str, Any]:
    """JSON body of `POST {SLACK_API_URL}/chat.postMessage`."""
    return {
        "channel": channel,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":rotating_light: Drift Detected :rotating_light:",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Name*: {name} *Space*: {space} *Version*: {version}"},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": description}},
        ],
    }


def opsgenie_body(
    team: str, space: str, name: str, version: str, description: str, priority: str = DEFAULT_OPSGENIE_PRIORITY
) -> dict[str, Any]:
    """JSON body of `POST {OPSGENIE_API_URL}`."""
    return {
        "message": f"Model drift detected for {space}/{name}/{version}",
        "description": description,
        "responders": [{"name": team, "type": "team"}],
        "visibleTo": [{"name": team, "type": "team"}],
        "tags": ["Model Drift", "Scouter"],
        "priority": priority,
    }


# ----------------------------------------------------------------------------------------- "why it fired" lines


def spc_reason(
    feature: str, alert: SpcAlert, rule: SpcRule | str = DEFAULT_SPC_RULE, sample_size: int | None = None
) -> str:
    """One line saying which SPC rule fired for `feature`; `sample_size` is the points averaged per sample."""
    parsed = parse_spc_rule(rule) if isinstance(rule, str) else rule
    head = f"{feature}: {alert.kind.display} in {alert.zone.display}"
    if alert.kind is SpcAlertType.TREND:
        why = "7 consecutive points whose zones strictly rise or strictly fall"
    elif alert.kind is SpcAlertType.OUT_OF_BOUNDS:
        c, a = parsed.pair(4)
        why = f"points beyond the three-sigma limits (zone 4 rule: {c} consecutive, {a} alternating)"
    else:
        k = int(alert.zone.value[-1])
        c, a = parsed.pair(k)
        if alert.kind is SpcAlertType.CONSECUTIVE:
            why = f"{c} consecutive points in zone {k} or beyond on one side of the center"
        else:
            why = f"{a} consecutive points in zone {k} or beyond, each differing from the one before"
    tail = f"; each point is the mean of {sample_size} values" if sample_size is not None else ""
    return f"{head}: {why}{tail}"


def _threshold_rule(threshold: PsiThreshold | None) -> str:
    if isinstance(threshold, ChiSquareThreshold):
        return f"chi-square, alpha {rust_float_str(threshold.alpha)}"
    if isinstance(threshold, NormalThreshold):
        return f"normal, alpha {rust_float_str(threshold.alpha)}"
    if isinstance(threshold, FixedThreshold):
        return "fixed"
    return ""


def psi_reason(alert: PsiFeatureAlert, threshold: PsiThreshold | None = None) -> str:
    """One line: PSI against its threshold, the threshold rule when given, and the sample when known."""
    details = [d for d in (_threshold_rule(threshold),) if d]
    if alert.sample_size is not None:
        details.append(f"{alert.sample_size} samples")
    if alert.bin_count is not None:
        details.append(f"{alert.bin_count} bins")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{alert.feature}: PSI {rust_float_str(alert.psi)} > threshold {rust_float_str(alert.threshold)}{suffix}"


def custom_reason(alert: CustomMetricAlert) -> str:
    """One line: the observed mean against the bound it crossed."""
    t, o, b = alert.training_value, alert.observed_value, alert.alert_threshold_value
    below = o < t
    op, bound = ("<", t if b is None else t - b) if below else (">", t if b is None else t + b)
    margin = "" if b is None else f" {'-' if below else '+'} {rust_float_str(b)}"
    return (
        f"{alert.metric}: observed {rust_float_str(o)} {op} {rust_float_str(bound)}"
        f" (training {rust_float_str(t)}{margin}, condition {alert.alert_threshold.value})"
    )
