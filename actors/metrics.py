"""Every Prometheus metric the server exports, in one place, on a registry the composition root owns.

One instance lives for the whole process (it survives SIGHUP restarts of the tree), so counters keep counting.
Tests build their own on a fresh registry.
"""

from __future__ import annotations

import attrs
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
DELAY_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


@attrs.frozen
class ScouterMetrics:
    registry: CollectorRegistry
    http_requests: Counter
    http_duration: Histogram
    supervisor_restarts: Counter
    records_received: Counter
    ingest_duration: Histogram
    writer_rows: Counter
    writer_flush_duration: Histogram
    writer_batch_size: Histogram
    writer_queue_depth: Gauge
    writer_failures: Counter
    broker_messages_consumed: Counter
    broker_messages_quarantined: Counter
    broker_messages_duplicate: Counter
    broker_reconnects: Counter
    kafka_consumer_lag: Gauge
    drift_checks: Counter
    drift_check_duration: Histogram
    drift_alerts: Counter
    drift_due_profiles: Gauge
    drift_expired_leases: Gauge
    drift_stale_leases: Counter
    drift_late_records: Counter
    alert_notices_dropped: Counter
    alerts_dispatched: Counter
    alerts_dispatch_failed: Counter
    alerts_dispatch_retried: Counter
    alert_dispatch_duration: Histogram
    alert_delivery_delay: Histogram
    alert_deliveries_reclaimed: Counter
    archive_rows: Counter
    archive_bytes: Counter
    archive_objects: Counter
    archive_quarantined_rows: Counter
    archive_groups_failed: Counter
    partition_default_rows: Gauge
    archive_passes: Counter
    archive_pass_duration: Histogram
    archive_last_success: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, *, process: bool = True) -> ScouterMetrics:
        registry = registry or CollectorRegistry()
        if process:
            process_collector.ProcessCollector(registry=registry)
            platform_collector.PlatformCollector(registry=registry)
            gc_collector.GCCollector(registry=registry)
        return cls(
            registry=registry,
            http_requests=Counter("http_requests", "HTTP requests", ["method", "path", "status"], registry=registry),
            http_duration=Histogram(
                "http_requests_duration_seconds",
                "HTTP request latency",
                ["method", "path", "status"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            supervisor_restarts=Counter(
                "scouter_supervisor_restarts", "Children restarted by their supervisor", ["child"], registry=registry
            ),
            records_received=Counter(
                "scouter_records_received", "Drift records received", ["kind", "transport"], registry=registry
            ),
            ingest_duration=Histogram(
                "scouter_ingest_request_duration_seconds",
                "Time from an ingest request to its durable ack",
                ["transport"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            writer_rows=Counter("scouter_writer_rows", "Rows committed by the writer", ["table"], registry=registry),
            writer_flush_duration=Histogram(
                "scouter_writer_flush_duration_seconds",
                "Writer flush (COPY and COMMIT) latency",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            writer_batch_size=Histogram(
                "scouter_writer_batch_rows", "Rows per writer flush", buckets=BATCH_BUCKETS, registry=registry
            ),
            writer_queue_depth=Gauge("scouter_writer_queue_depth", "Write requests waiting", registry=registry),
            writer_failures=Counter(
                "scouter_writer_failures", "Write requests answered with an error", ["reason"], registry=registry
            ),
            broker_messages_consumed=Counter(
                "scouter_broker_messages_consumed",
                "Broker messages consumed and settled (stored, skipped as already stored, or quarantined)",
                ["transport"],
                registry=registry,
            ),
            broker_messages_quarantined=Counter(
                "scouter_broker_messages_quarantined",
                "Broker messages that could not be decoded or stored, kept in scouter.quarantine",
                ["transport"],
                registry=registry,
            ),
            broker_messages_duplicate=Counter(
                "scouter_broker_messages_duplicate",
                "Redelivered broker messages skipped because their rows were already stored",
                ["transport"],
                registry=registry,
            ),
            broker_reconnects=Counter(
                "scouter_broker_reconnects",
                "Broker connections lost (or never made) and retried by a consumer",
                ["transport"],
                registry=registry,
            ),
            kafka_consumer_lag=Gauge(
                "scouter_kafka_consumer_lag",
                "Messages in a partition after the last one stored (high watermark - next offset)",
                ["topic", "partition"],
                registry=registry,
            ),
            drift_checks=Counter(
                "scouter_drift_checks",
                "Drift checks run, by drift type and outcome (clean, drift, failed, lease_lost, released, unavailable)",
                ["drift_type", "outcome"],
                registry=registry,
            ),
            drift_check_duration=Histogram(
                "scouter_drift_check_duration_seconds",
                "Drift check latency, claim to reschedule",
                ["drift_type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            drift_alerts=Counter("scouter_drift_alerts", "Drift alerts stored", ["drift_type"], registry=registry),
            drift_due_profiles=Gauge(
                "scouter_drift_due_profiles",
                "Active profiles due and not claimed (incl. expired leases)",
                registry=registry,
            ),
            drift_expired_leases=Gauge(
                "scouter_drift_expired_leases", "Due profiles whose worker's lease expired", registry=registry
            ),
            drift_stale_leases=Counter(
                "scouter_drift_stale_leases_reclaimed", "Expired leases taken over by a poller", registry=registry
            ),
            drift_late_records=Counter(
                "scouter_drift_late_records",
                "Records committed after the check of their created_at's window had read (in flight at its bound, or a"
                " backlog): judged once, by the next check",
                ["drift_type"],
                registry=registry,
            ),
            alert_notices_dropped=Counter(
                "scouter_alert_notices_dropped",
                "Alert notices not handed to the dispatcher (channel full or closed; the alerts are stored)",
                ["reason"],
                registry=registry,
            ),
            alerts_dispatched=Counter(
                "scouter_alerts_dispatched", "Alert messages delivered, by channel", ["channel"], registry=registry
            ),
            alerts_dispatch_failed=Counter(
                "scouter_alerts_dispatch_failed",
                "Alert messages given up on, by channel and reason (rejected, gave_up, not_configured)",
                ["channel", "reason"],
                registry=registry,
            ),
            alerts_dispatch_retried=Counter(
                "scouter_alerts_dispatch_retried",
                "Alert delivery attempts that failed and will be retried, by channel",
                ["channel"],
                registry=registry,
            ),
            alert_dispatch_duration=Histogram(
                "scouter_alert_dispatch_duration_seconds",
                "One alert delivery attempt, request to answer, by channel",
                ["channel"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            alert_delivery_delay=Histogram(
                "scouter_alert_delivery_delay_seconds",
                "From an alert stored to its message delivered, by channel",
                ["channel"],
                buckets=DELAY_BUCKETS,
                registry=registry,
            ),
            alert_deliveries_reclaimed=Counter(
                "scouter_alert_deliveries_reclaimed",
                "Alert deliveries taken over after the lease of a dispatcher that died mid-send expired",
                registry=registry,
            ),
            archive_rows=Counter(
                "scouter_archive_rows", "Rows written to the archive and marked archived", ["kind"], registry=registry
            ),
            archive_bytes=Counter(
                "scouter_archive_bytes", "Bytes of Parquet written to the archive", ["kind"], registry=registry
            ),
            archive_objects=Counter(
                "scouter_archive_objects", "Parquet objects written and committed", ["kind"], registry=registry
            ),
            archive_quarantined_rows=Counter(
                "scouter_archive_quarantined_rows",
                "Rows the archiver could not archive (unsafe path segment, value out of range), moved to quarantine",
                ["kind"],
                registry=registry,
            ),
            archive_groups_failed=Counter(
                "scouter_archive_groups_failed",
                "Groups (kind, entity, hour) the archiver could not write and skipped, leaving their rows in place "
                "(e.g. created_at -infinity); the pass carries on with the rest",
                ["kind"],
                registry=registry,
            ),
            partition_default_rows=Gauge(
                "scouter_partition_default_rows",
                "Rows of a table's default partition whose created_at lies outside the range maintenance keeps "
                "daily partitions for (far future, infinite, older than retention), as of the last round",
                ["table"],
                registry=registry,
            ),
            archive_passes=Counter(
                "scouter_archive_passes",
                "Archive passes, by outcome (ok, failed, skipped: another replica held the lock)",
                ["outcome"],
                registry=registry,
            ),
            archive_pass_duration=Histogram(
                "scouter_archive_pass_duration_seconds",
                "Archive pass duration",
                buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
                registry=registry,
            ),
            archive_last_success=Gauge(
                "scouter_archive_last_success_timestamp_seconds",
                "Unix time at which the last successful archive pass ended",
                registry=registry,
            ),
        )
