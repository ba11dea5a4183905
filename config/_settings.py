"""Every setting of the server, as frozen attrs classes; each field names its environment variable.

Names and defaults follow upstream v0.6.4 (spec/server.md §9); additions are ours and say so in their help text.
"""

from __future__ import annotations

import attrs

from ._fields import at_least, between, env, one_of, storage_uri, url_scheme

#: Upstream's built-in secret: base64 of bytes 31..0. Serves as access secret, refresh secret and bootstrap key
#: when those are unset; the server warns loudly when it is in use.
DEFAULT_SECRET = "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="
DEFAULT_DATABASE_URI = "postgresql://postgres:postgres@localhost:5432/postgres"
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "critical")


@attrs.frozen
class LogSettings:
    level: str = env("LOG_LEVEL", "info", help="trace, debug, info, warn or error", validator=one_of(LOG_LEVELS))
    json: bool = env("LOG_JSON", False, help="JSON log lines")


@attrs.frozen
class HttpSettings:
    host: str = env("SCOUTER_SERVER_HOST", "0.0.0.0", help="address the API binds to (ours)")
    port: int = env(
        "SCOUTER_SERVER_PORT", 8000, help="API port; Prometheus also on port + 1", validator=between(0, 65534)
    )
    metrics_port: int | None = env(
        "SCOUTER_METRICS_PORT",
        None,
        help="Prometheus port (ours; default: API port + 1, 0 = ephemeral)",
        validator=attrs.validators.optional(between(0, 65535)),
    )
    metrics_token: str | None = env(
        "METRICS_TOKEN", None, secret=True, help="when set, /metrics requires Authorization: Bearer <token> (ours)"
    )
    max_body_bytes: int = env(
        "SCOUTER_MAX_BODY_BYTES",
        2 * 1024 * 1024,
        help="largest request body accepted; larger gets 413",
        validator=at_least(1024),
    )
    graceful_timeout: float = env(
        "SCOUTER_GRACEFUL_TIMEOUT",
        10.0,
        help="seconds in-flight requests get to finish at shutdown (ours)",
        validator=at_least(0),
    )
    trusted_proxy_hops: int = env(
        "SCOUTER_TRUSTED_PROXY_HOPS",
        0,
        help="reverse proxies in front of the server whose X-Forwarded-For entries are believed; 0: use the peer"
        " address (ours; login throttling keys on the client address)",
        validator=at_least(0),
    )

    @property
    def effective_metrics_port(self) -> int:
        if self.metrics_port is not None:
            return self.metrics_port
        return 0 if self.port == 0 else self.port + 1


@attrs.frozen
class DatabaseSettings:
    uri: str | None = env(
        "DATABASE_URI",
        None,
        secret=True,
        help=f"PostgreSQL URI; unset: {DEFAULT_DATABASE_URI} if it answers, else embedded",
        validator=url_scheme("postgres", "postgresql"),
    )
    max_pool_size: int = env("MAX_POOL_SIZE", 30, help="max DB connections", validator=at_least(1))
    min_pool_size: int = env("MIN_POOL_SIZE", 2, help="connections kept open (ours)", validator=at_least(0))
    acquire_timeout: float = env(
        "DB_ACQUIRE_TIMEOUT_SECONDS", 10.0, help="wait for a pooled connection", validator=at_least(0.1)
    )
    data_dir: str = env("SCOUTER_DATA_DIR", "./scouter_data", help="embedded PostgreSQL data (ours)")
    embedded: str = env(
        "SCOUTER_EMBEDDED_DATABASE",
        "auto",
        help="auto: embedded PostgreSQL when DATABASE_URI is unset and nothing answers at the default URI; "
        "always: embedded unless DATABASE_URI is set; never (ours)",
        validator=one_of(("auto", "always", "never")),
    )
    retention_days: int = env("DATA_RETENTION_PERIOD", 30, help="days before rows are archived", validator=at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.min_pool_size > self.max_pool_size:
            raise ValueError("MIN_POOL_SIZE must not exceed MAX_POOL_SIZE")


@attrs.frozen
class AuthSettings:
    encrypt_secret: str = env("SCOUTER_ENCRYPT_SECRET", DEFAULT_SECRET, secret=True, help="access-JWT HMAC secret")
    refresh_secret: str = env("SCOUTER_REFRESH_SECRET", DEFAULT_SECRET, secret=True, help="refresh-JWT HMAC secret")
    bootstrap_key: str = env(
        "SCOUTER_BOOTSTRAP_KEY", DEFAULT_SECRET, secret=True, help="x-bootstrap-token value that may create users"
    )
    default_username: str = env("SCOUTER_DEFAULT_USERNAME", "admin", help="first admin user (first start only)")
    default_password: str = env("SCOUTER_DEFAULT_PASSWORD", "admin", secret=True, help="its password")

    def __attrs_post_init__(self) -> None:
        if self.default_username == "guest":
            raise ValueError("SCOUTER_DEFAULT_USERNAME must not be 'guest': that user is created as guest/guest")

    strict_secrets: bool = env(
        "SCOUTER_STRICT_SECRETS", False, help="refuse to start while a secret is the built-in default (ours)"
    )


@attrs.frozen
class KafkaSettings:
    brokers: str = env("KAFKA_BROKERS", "localhost:9092", help="set to enable the Kafka consumers")
    workers: int = env("KAFKA_WORKER_COUNT", 3, help="Kafka consumers", validator=at_least(1))
    topics: tuple[str, ...] = env("KAFKA_TOPIC", ("scouter_monitoring",), help="comma-separated topics")
    group: str = env("KAFKA_GROUP", "scouter", help="consumer group")
    offset_reset: str = env(
        "KAFKA_OFFSET_RESET", "earliest", help="earliest or latest", validator=one_of(("earliest", "latest", "none"))
    )
    username: str | None = env("KAFKA_USERNAME", None, help="SASL user (SASL only when user and password set)")
    password: str | None = env("KAFKA_PASSWORD", None, secret=True, help="SASL password")
    security_protocol: str = env(
        "KAFKA_SECURITY_PROTOCOL",
        "SASL_SSL",
        help="with SASL",
        validator=one_of(("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), fold_case=False),
    )
    sasl_mechanism: str = env(
        "KAFKA_SASL_MECHANISM",
        "PLAIN",
        help="with SASL",
        validator=one_of(("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), fold_case=False),
    )
    cert_location: str | None = env("KAFKA_CERT_LOCATION", None, help="CA file")
    session_timeout_ms: int = env(
        "KAFKA_SESSION_TIMEOUT_MS",
        6000,
        help="consumer-group session timeout, as upstream's session.timeout.ms (ours)",
        validator=at_least(1000),
    )
    heartbeat_interval_ms: int = env(
        "KAFKA_HEARTBEAT_INTERVAL_MS",
        2000,
        help="consumer-group heartbeat; below a third of the session timeout (ours)",
        validator=at_least(100),
    )
    max_batch: int = env(
        "KAFKA_MAX_BATCH",
        1000,
        help="messages a consumer takes per fetch and stores in one transaction (ours)",
        validator=at_least(1),
    )

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("KAFKA_HEARTBEAT_INTERVAL_MS must be below KAFKA_SESSION_TIMEOUT_MS")


@attrs.frozen
class RabbitSettings:
    addr: str = env(
        "RABBITMQ_ADDR",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        secret=True,
        help="set to enable the RabbitMQ consumers",
        validator=url_scheme("amqp", "amqps"),
    )
    consumers: int = env("RABBITMQ_CONSUMER_COUNT", 3, help="RabbitMQ consumers", validator=at_least(1))
    prefetch: int = env("RABBITMQ_PREFETCH_COUNT", 10, help="unacked messages per consumer", validator=at_least(1))
    queue: str = env("RABBITMQ_QUEUE", "scouter_monitoring", help="queue to consume")
    consumer_tag: str = env("RABBITMQ_CONSUMER_TAG", "scouter", help="consumer tag (each consumer appends -<index>)")
    digest_retention: float = env(
        "RABBITMQ_DIGEST_RETENTION_SECONDS",
        3600.0,
        help="how long digests of stored messages are kept to recognise redeliveries (ours)",
        validator=at_least(1),
    )


@attrs.frozen
class StorageSettings:
    uri: str = env(
        "SCOUTER_STORAGE_URI",
        "./scouter_storage",
        help="archive root: local path, s3://, gs://, az://",
        validator=storage_uri,
    )
    aws_region: str = env("AWS_REGION", "us-east-1", help="S3 region")
    google_account_json_base64: str | None = env(
        "GOOGLE_ACCOUNT_JSON_BASE64", None, secret=True, help="base64 GCS service-account JSON"
    )
    archive_interval: float = env(
        "SCOUTER_ARCHIVE_INTERVAL_SECONDS", 3600.0, help="seconds between archive passes", validator=at_least(1)
    )


@attrs.frozen
class DispatchSettings:
    slack_app_token: str | None = env("SLACK_APP_TOKEN", None, secret=True, help="Slack bot token")
    slack_api_url: str = env(
        "SLACK_API_URL", "https://slack.com/api", help="Slack API base URL", validator=url_scheme("http", "https")
    )
    opsgenie_api_key: str | None = env("OPSGENIE_API_KEY", None, secret=True, help="OpsGenie API key")
    opsgenie_api_url: str = env(
        "OPSGENIE_API_URL",
        "https://api.opsgenie.com/v2/alerts",
        help="OpsGenie alerts endpoint",
        validator=url_scheme("http", "https"),
    )
    webhook_url: str | None = env(
        "SCOUTER_WEBHOOK_URL",
        None,
        secret=True,  # webhook URLs often embed their credential
        help="when set, every alert is also POSTed here as JSON (ours)",
        validator=url_scheme("http", "https"),
    )
    webhook_secret: str | None = env(
        "SCOUTER_WEBHOOK_SECRET",
        None,
        secret=True,
        help="HMAC-SHA256 key: webhook requests carry X-Scouter-Signature: sha256=<hex> (ours)",
    )
    pagerduty_routing_key: str | None = env(
        "SCOUTER_PAGERDUTY_ROUTING_KEY",
        None,
        secret=True,
        help="when set, every alert also triggers a PagerDuty Events API v2 event (ours)",
    )
    pagerduty_url: str = env(
        "SCOUTER_PAGERDUTY_URL",
        "https://events.pagerduty.com/v2/enqueue",
        help="PagerDuty Events API v2 endpoint (ours)",
        validator=url_scheme("http", "https"),
    )
    pagerduty_severity: str = env(
        "SCOUTER_PAGERDUTY_SEVERITY",
        "warning",
        help="severity of PagerDuty events: critical, error, warning or info (ours)",
        validator=one_of(("critical", "error", "warning", "info"), fold_case=False),
    )
    enabled: bool = env("SCOUTER_ALERT_DISPATCH", True, help="run the alert dispatcher in this process (ours)")
    timeout: float = env(
        "SCOUTER_ALERT_TIMEOUT_SECONDS", 10.0, help="per request to an alert channel (ours)", validator=at_least(0.1)
    )
    max_attempts: int = env(
        "SCOUTER_ALERT_MAX_ATTEMPTS",
        10,
        help="attempts per message and channel before it is recorded as failed (ours)",
        validator=at_least(1),
    )
    backoff: float = env(
        "SCOUTER_ALERT_BACKOFF_SECONDS",
        2.0,
        help="first retry delay; doubles per attempt, with jitter (ours)",
        validator=at_least(0.01),
    )
    backoff_max: float = env(
        "SCOUTER_ALERT_BACKOFF_MAX_SECONDS", 300.0, help="longest retry delay (ours)", validator=at_least(0.01)
    )
    lease: float = env(
        "SCOUTER_ALERT_LEASE_SECONDS",
        60.0,
        help="a claimed message not recorded within this is sent again (a dispatcher died) (ours)",
        validator=at_least(1),
    )
    concurrency: int = env(
        "SCOUTER_ALERT_CONCURRENCY", 8, help="messages in flight per dispatcher (ours)", validator=at_least(1)
    )
    poll: float = env(
        "SCOUTER_ALERT_POLL_SECONDS",
        5.0,
        help="longest pause between looks at the alert table (ours)",
        validator=at_least(0.05),
    )
    retention_days: int = env(
        "SCOUTER_ALERT_DELIVERY_RETENTION_DAYS",
        30,
        help="days finished deliveries stay in scouter.alert_delivery (ours)",
        validator=at_least(1),
    )

    def __attrs_post_init__(self) -> None:
        if self.lease <= self.timeout:
            raise ValueError("SCOUTER_ALERT_LEASE_SECONDS must exceed SCOUTER_ALERT_TIMEOUT_SECONDS")
        if self.backoff_max < self.backoff:
            raise ValueError("SCOUTER_ALERT_BACKOFF_MAX_SECONDS must not be below SCOUTER_ALERT_BACKOFF_SECONDS")


@attrs.frozen
class Settings:
    log: LogSettings = LogSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    polling_workers: int = env("POLLING_WORKER_COUNT", 4, help="drift pollers", validator=at_least(0))
    http_consumer_workers: int = env(
        "HTTP_CONSUMER_WORKER_COUNT",
        1,
        help="upstream's HTTP ingest workers; ours has one batched writer",
        validator=at_least(1),
    )
    shutdown_deadline: float = env(
        "SCOUTER_SHUTDOWN_DEADLINE",
        60.0,
        help="seconds after SIGTERM before whatever is left is cancelled (ours)",
        validator=at_least(1),
    )
    max_future_seconds: float = env(
        "SCOUTER_MAX_FUTURE_SECONDS",
        86400.0,
        help="records dated further ahead of the server's clock are refused: HTTP 400, broker message quarantined "
        "(ours; records before 1970 are always refused)",
        validator=at_least(1),
    )
    kafka: KafkaSettings | None = None
    rabbitmq: RabbitSettings | None = None
    storage: StorageSettings = StorageSettings()
    dispatch: DispatchSettings = DispatchSettings()


#: Optional sections are on when their first variable is set, as upstream.
ENABLED_BY = {KafkaSettings: "KAFKA_BROKERS", RabbitSettings: "RABBITMQ_ADDR"}
