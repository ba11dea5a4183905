"""The pollers' side of the alert channel: never blocks, counts what it cannot hand over."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry

from actors.alert_channel import AlertChannel, AlertNotice, StoredAlert, open_alert_channel
from actors.metrics import ScouterMetrics
from scouter.profiles import ConsoleDispatch

ALERT = StoredAlert(7, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), {"entity_name": "mae"})
NOTICE = AlertNotice("uid", "cap", "model", "1.0.0", "Custom", ConsoleDispatch(True), (ALERT,))


def _dropped(metrics: ScouterMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("scouter_alert_notices_dropped_total", {"reason": reason})


def test_offer_delivers_until_full_then_counts_drops() -> None:
    """With room the notice is delivered; a full buffer drops (and counts) instead of blocking."""
    metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
    send, receive = open_alert_channel(1)
    channel = AlertChannel(send, metrics)
    assert [True, False, False] == [channel.offer(NOTICE) for _ in range(3)]
    assert (2, 2.0) == (channel.dropped, _dropped(metrics, "full"))
    assert (7,) == receive.receive_nowait().alert_ids


def test_offer_to_a_closed_channel_counts_drops() -> None:
    """Once the dispatcher's end is closed, notices are dropped and counted as 'closed'."""
    metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
    send, receive = open_alert_channel(10)
    receive.close()
    channel = AlertChannel(send, metrics)
    assert not channel.offer(NOTICE)
    assert 1.0 == _dropped(metrics, "closed")
