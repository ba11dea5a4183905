"""Alert descriptions, dispatcher bodies and "why it fired" lines, character by character against spec §7."""

import pytest

from scouter.alerts import (
    DispatchStyle,
    console_text,
    custom_description,
    custom_reason,
    opsgenie_body,
    psi_description,
    psi_reason,
    slack_body,
    spc_description,
    spc_reason,
)
from scouter.drift import (
    AlertThreshold,
    AlertZone,
    ChiSquareThreshold,
    CustomMetricAlert,
    PsiFeatureAlert,
    SpcAlert,
    SpcAlertType,
)

Z = AlertZone
K = SpcAlertType
SPC_ALERTS = {
    "a_quiet": frozenset(),  # first in order and without alerts: upstream would then drop the header (bug #21)
    "test_feature_1": frozenset({SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)}),
    "test_feature_2": frozenset({SpcAlert(Z.ZONE3, K.ALTERNATING), SpcAlert(Z.ZONE1, K.CONSECUTIVE)}),
}
PSI_ALERTS = [PsiFeatureAlert("feature_0", 0.51, 0.0423), PsiFeatureAlert("feature_1", 1.0, 0.03014352720564615)]


def test_spc_description_console() -> None:
    """Console: "Features that have drifted: " header, 4-space feature lines, 8-space Kind/Zone lines."""
    expected = (
        "Features that have drifted: \n"
        "    test_feature_1: \n"
        "        Kind: Out of bounds\n        Zone: Zone 4\n"
        "    test_feature_2: \n"
        "        Kind: Consecutive\n        Zone: Zone 1\n"
        "        Kind: Alternating\n        Zone: Zone 3\n"
    )
    assert expected == spc_description(SPC_ALERTS, DispatchStyle.CONSOLE)


def test_spc_description_opsgenie() -> None:
    """OpsGenie: the "Drift has been detected" header with the Console layout."""
    expected = (
        "Drift has been detected for the following features:\n"
        "    test_feature_1: \n"
        "        Kind: Out of bounds\n        Zone: Zone 4\n"
        "    test_feature_2: \n"
        "        Kind: Consecutive\n        Zone: Zone 1\n"
        "        Kind: Alternating\n        Zone: Zone 3\n"
    )
    assert expected == spc_description(SPC_ALERTS, DispatchStyle.OPSGENIE)


def test_spc_description_slack() -> None:
    """Slack: unindented feature lines and "{kind} error in {zone}" indented 4."""
    expected = (
        "Drift has been detected for the following features:\n"
        "test_feature_1: \n"
        "    Out of bounds error in Zone 4\n"
        "test_feature_2: \n"
        "    Consecutive error in Zone 1\n"
        "    Alternating error in Zone 3\n"
    )
    assert expected == spc_description(SPC_ALERTS, DispatchStyle.SLACK)


def test_spc_description_trend() -> None:
    """A trend alert is written with zone NA."""
    expected = "Features that have drifted: \n    f: \n        Kind: Trend\n        Zone: NA\n"
    assert expected == spc_description({"f": [SpcAlert(Z.NOT_APPLICABLE, K.TREND)]}, DispatchStyle.CONSOLE)


def test_spc_description_empty() -> None:
    """No alerting feature gives an empty description (and no header)."""
    assert "" == spc_description({"f": frozenset()}, DispatchStyle.SLACK)


def test_psi_description_console_and_opsgenie() -> None:
    """PSI: one header, 4-space feature line, 8-space drift line with Rust-formatted numbers."""
    expected = (
        "PSI Drift has been detected for the following features:\n"
        "    feature_0: \n"
        "        Drift Value: Feature 'feature_0' has experienced drift, with a current PSI score of 0.51 that exceeds"
        " the configured threshold of 0.0423.\n"
        "    feature_1: \n"
        "        Drift Value: Feature 'feature_1' has experienced drift, with a current PSI score of 1 that exceeds"
        " the configured threshold of 0.03014352720564615.\n"
    )
    assert (expected, expected) == (
        psi_description(PSI_ALERTS, DispatchStyle.CONSOLE),
        psi_description(PSI_ALERTS, DispatchStyle.OPSGENIE),
    )


def test_psi_description_slack() -> None:
    """PSI on Slack: unindented feature line, drift line indented 4."""
    expected = (
        "PSI Drift has been detected for the following features:\n"
        "feature_0: \n"
        "    Drift Value: Feature 'feature_0' has experienced drift, with a current PSI score of 0.51 that exceeds"
        " the configured threshold of 0.0423.\n"
    )
    assert expected == psi_description(PSI_ALERTS[:1], DispatchStyle.SLACK)


def test_psi_description_empty() -> None:
    """No PSI alerts give an empty description."""
    assert "" == psi_description([], DispatchStyle.CONSOLE)


@pytest.mark.parametrize(
    ("condition", "boundary", "first_line"),
    [
        ("Below", 2.0, "The observed mae metric value has dropped below the threshold (initial value - 2)"),
        ("Below", None, "The mae metric value has dropped below the initial value"),
        ("Above", 2.5, "The mae metric value has increased beyond the threshold (initial value + 2.5)"),
        ("Above", None, "The mae metric value has increased beyond the initial value"),
        ("Outside", 0.1, "The mae metric value has fallen outside the threshold (initial value ± 0.1)"),
        ("Outside", None, "The metric value has fallen outside the initial value for mae"),
    ],
)
def test_custom_description(condition: str, boundary: float | None, first_line: str) -> None:
    """Custom: the condition's first line, then the initial and current values, for every dispatcher."""
    alert = CustomMetricAlert("mae", 12.0, 14.5, AlertThreshold(condition), boundary)
    expected = f"{first_line}\nInitial Metric Value: 12\nCurrent Metric Value: 14.5\n"
    assert [expected] * 3 == [custom_description(alert, style) for style in DispatchStyle]


def test_console_text() -> None:
    """Console prints "\\nDrift detected for space/name/version! \\n" + description, nothing when empty."""
    assert ("\nDrift detected for sp/nm/1.0.0! \nbody\n", None) == (
        console_text("sp", "nm", "1.0.0", "body\n"),
        console_text("sp", "nm", "1.0.0", ""),
    )


def test_slack_body() -> None:
    """The chat.postMessage body: channel, header block, name/space/version section, description section."""
    expected = {
        "channel": "chan",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":rotating_light: Drift Detected :rotating_light:",
                    "emoji": True,
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Name*: nm *Space*: sp *Version*: 1.0.0"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "desc"}},
        ],
    }
    assert expected == slack_body("chan", "sp", "nm", "1.0.0", "desc")


def test_opsgenie_body() -> None:
    """The OpsGenie body: message, description, team responders and visibility, tags, priority (default P5)."""
    expected = {
        "message": "Model drift detected for test_repo/test_ml_model/1.0.0",
        "description": "Features have drifted",
        "responders": [{"name": "test-team", "type": "team"}],
        "visibleTo": [{"name": "test-team", "type": "team"}],
        "tags": ["Model Drift", "Scouter"],
        "priority": "P5",
    }
    body = opsgenie_body("test-team", "test_repo", "test_ml_model", "1.0.0", "Features have drifted")
    p1 = opsgenie_body("test-team", "test_repo", "test_ml_model", "1.0.0", "Features have drifted", priority="P1")
    assert (expected, "P1") == (body, p1["priority"])


def test_spc_reasons() -> None:
    """SPC why-lines name the rule counts that fired, and the sample size when known."""
    reasons = [
        spc_reason("f", SpcAlert(Z.ZONE1, K.CONSECUTIVE)),
        spc_reason("f", SpcAlert(Z.ZONE3, K.ALTERNATING), "8 16 4 8 2 4 1 1", sample_size=25),
        spc_reason("f", SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)),
        spc_reason("f", SpcAlert(Z.NOT_APPLICABLE, K.TREND)),
    ]
    expected = [
        "f: Consecutive in Zone 1: 8 consecutive points in zone 1 or beyond on one side of the center",
        "f: Alternating in Zone 3: 4 consecutive points in zone 3 or beyond, each differing from the one before;"
        " each point is the mean of 25 values",
        "f: Out of bounds in Zone 4: points beyond the three-sigma limits (zone 4 rule: 1 consecutive, 1 alternating)",
        "f: Trend in NA: 7 consecutive points whose zones strictly rise or strictly fall",
    ]
    assert expected == reasons


def test_psi_reason() -> None:
    """PSI why-line: value against threshold, the threshold rule and the sample when known."""
    alert = PsiFeatureAlert("feature_0", 0.51, 0.0423, sample_size=400, bin_count=10)
    assert (
        "feature_0: PSI 0.51 > threshold 0.0423 (chi-square, alpha 0.05, 400 samples, 10 bins)",
        "feature_0: PSI 0.51 > threshold 0.0423",
    ) == (psi_reason(alert, ChiSquareThreshold(0.05)), psi_reason(PsiFeatureAlert("feature_0", 0.51, 0.0423)))


def test_custom_reason() -> None:
    """Custom why-line: the observed mean against the bound it crossed."""
    assert (
        "mae: observed 14.5 > 14 (training 12 + 2, condition Above)",
        "acc: observed 0.67 < 0.76 (training 0.76, condition Below)",
    ) == (
        custom_reason(CustomMetricAlert("mae", 12.0, 14.5, AlertThreshold.ABOVE, 2.0)),
        custom_reason(CustomMetricAlert("acc", 0.76, 0.67, AlertThreshold.BELOW, None)),
    )
