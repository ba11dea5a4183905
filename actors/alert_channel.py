"""The alert channel: pollers tell the alert dispatcher about alerts they have just stored.

The tree owns the channel (bounded). Pollers never wait on it: `AlertChannel.offer` uses ``send_nowait`` and counts
what it drops when the buffer is full or nobody listens any more. Dropping is safe because the alerts are already
durable ``drift_alert`` rows, committed before the notice is offered; the dispatcher sends what is pending in the
table as well, so a notice only saves it a look-up and some latency. Until the dispatcher exists nobody receives:
the buffer fills and further notices are counted as dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

import attrs
import trio

from scouter.profiles import DispatchConfig

from .metrics import ScouterMetrics

log = logging.getLogger("actors.alerts")

__all__ = [
    "ALERT_CHANNEL_CAPACITY",
    "AlertChannel",
    "AlertNotice",
    "AlertReceiver",
    "StoredAlert",
    "open_alert_channel",
]

ALERT_CHANNEL_CAPACITY = 1000  # notices, one per check that found drift


@attrs.frozen
class StoredAlert:
    """One committed ``drift_alert`` row: its key and its map (display strings, as upstream stores them)."""

    id: int
    created_at: dt.datetime
    alert: Mapping[str, str]


@attrs.frozen
class AlertNotice:
    """All alerts of one check of one profile, stored in one transaction with its reschedule."""

    uid: str
    space: str
    name: str
    version: str
    drift_type: str  # "Spc" | "Psi" | "Custom"
    dispatch_config: DispatchConfig
    alerts: tuple[StoredAlert, ...]

    @property
    def alert_ids(self) -> tuple[int, ...]:
        return tuple(alert.id for alert in self.alerts)


AlertReceiver = trio.MemoryReceiveChannel[AlertNotice]


def open_alert_channel(
    capacity: int = ALERT_CHANNEL_CAPACITY,
) -> tuple[trio.MemorySendChannel[AlertNotice], AlertReceiver]:
    return trio.open_memory_channel[AlertNotice](capacity)


@attrs.define
class AlertChannel:
    """The pollers' side of the channel: never blocks, counts drops (metric and `dropped`)."""

    send: trio.MemorySendChannel[AlertNotice]
    metrics: ScouterMetrics
    dropped: int = 0

    def offer(self, notice: AlertNotice) -> bool:
        """Hand `notice` to the dispatcher if there is room; False (counted) when the buffer is full or closed."""
        try:
            self.send.send_nowait(notice)
        except trio.WouldBlock:
            why = "full"
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            why = "closed"
        else:
            return True
        self.dropped += 1
        self.metrics.alert_notices_dropped.labels(why).inc()
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.info("alert channel %s: %d notice(s) dropped so far (alerts are stored)", why, self.dropped)
        return False
