"""The alerts of a dispatch round as messages (spec §7, §12 #21): what is read of a stored alert and its check, and
how alerts are grouped as upstream sends them.

The SPC or PSI alerts of one check (same profile, same ``created_at``: a check stores its alerts in one transaction)
make one message covering every alerting feature; a custom-metric alert is a message of its own (one per alerting
metric). A message is named by its alerts' ids (`message_key`), the name receivers use to fold repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from scouter.profiles import DriftProfile

CONSOLE: Final = "console"
SLACK: Final = "slack"
OPSGENIE: Final = "opsgenie"
WEBHOOK: Final = "webhook"
PAGERDUTY: Final = "pagerduty"
CHANNELS: Final = (CONSOLE, SLACK, OPSGENIE, WEBHOOK, PAGERDUTY)

#: Drift types whose alerts of one check make one message (upstream: one message per task for SPC and PSI).
GROUPED_TYPES: Final = frozenset({"Spc", "Psi"})
#: PagerDuty dedup keys hold 255 characters, OpsGenie aliases 512: longer id lists are abbreviated.
MAX_KEY_LENGTH: Final = 200


@attrs.frozen
class ChannelSetup:
    """Which channels this server can reach (from the settings; never the credentials themselves)."""

    slack: bool = False
    opsgenie: bool = False
    webhook: bool = False
    pagerduty: bool = False
    pagerduty_severity: str = "warning"


@attrs.frozen
class AlertRow:
    """A stored ``drift_alert`` row, as the dispatcher reads it."""

    id: int
    created_at: datetime
    space: str
    name: str
    version: str
    drift_type: str
    entity_name: str
    alert: Mapping[str, Any]
    #: The start of the data the check read (the profile's previous_run when the alert was stored); None: all data.
    window_start: datetime | None = None


@attrs.frozen
class CheckFacts:
    """What the planner looked up for a message."""

    profile: DriftProfile | None = None
    #: Why there is no profile (missing, or unreadable), for the message's note.
    problem: str | None = None
    schedule: str | None = None
    #: Records per feature or metric in the check's window (SPC points, PSI counts, custom records).
    samples: Mapping[str, int] = attrs.field(factory=dict)


def alert_ref(alert_id: int) -> str:
    """The link-friendly name of one alert."""
    return f"scouter-alert-{alert_id}"


def message_key(ids: Iterable[int]) -> str:
    """Stable, unique name of a message (its alerts' ids): webhook delivery id, OpsGenie alias, PagerDuty dedup key."""
    ordered = sorted(ids)
    key = "scouter-alert-" + "-".join(map(str, ordered))
    if len(key) > MAX_KEY_LENGTH:
        key = f"scouter-alert-{ordered[0]}-and-{len(ordered) - 1}-more"
    return key


@attrs.frozen
class Message:
    """The alerts one message covers (at least one), in id order."""

    alerts: tuple[AlertRow, ...]

    @property
    def head(self) -> AlertRow:
        return self.alerts[0]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(row.id for row in self.alerts)

    @property
    def key(self) -> str:
        return message_key(self.ids)

    @property
    def space(self) -> str:
        return self.head.space

    @property
    def name(self) -> str:
        return self.head.name

    @property
    def version(self) -> str:
        return self.head.version

    @property
    def drift_type(self) -> str:
        return self.head.drift_type

    @property
    def created_at(self) -> datetime:
        return self.head.created_at

    @property
    def window_start(self) -> datetime | None:
        return self.head.window_start

    @property
    def entity(self) -> str:
        return f"{self.space}/{self.name}/{self.version}"


def group_alerts(rows: Iterable[AlertRow]) -> list[Message]:
    """Messages in the order their alerts were stored: one per SPC/PSI check, one per custom alert."""
    groups: dict[tuple[Any, ...], list[AlertRow]] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        if row.drift_type in GROUPED_TYPES:
            key: tuple[Any, ...] = (row.created_at, row.space, row.name, row.version, row.drift_type)
        else:
            key = (row.created_at, row.id)
        groups.setdefault(key, []).append(row)
    return [Message(tuple(rows)) for rows in groups.values()]
