"""Real backing services for the test suite: PostgreSQL, RabbitMQ, a Kafka-compatible broker (tansu), Azurite.

Plain Python (no pytest at import) so fixtures, benchmarks and ad-hoc scripts can share it. Each `ensure_*` returns
an address, reusing a running server where one answers and otherwise starting a private one that this process owns
and stops at exit (`stop_all`, also registered with atexit). A server we did not start is never stopped.

One module per service (`_postgres`, `_rabbitmq`, `_kafka`, `_azurite`), on top of the owned-server life cycle
(`_owned`), child processes (`_process`), TCP ports (`_ports`) and Debian packages installed on demand (`_apt`).

Environment:
- SCOUTER_TEST_DATABASE_URI: a PostgreSQL >= 14 DSN to use when it answers.
- SCOUTER_TEST_RABBITMQ_URL: an amqp URL to use when it answers.
- SCOUTER_TEST_FORCE_PRIVATE: comma list of `postgres`, `rabbitmq` (or `all`): skip the "already running" probes
  (environment and default ports) and always start our own server.
- SCOUTER_TEST_POSTGRES_BINARIES: `debian` or `embedded`, to force where a private PostgreSQL comes from.
- SCOUTER_TEST_KEEP_SERVICE_DIRS=1: keep data and log directories after stopping.

The fast paths never import the client libraries at module import; asyncpg and aio-pika are imported lazily and run
in a throwaway thread with its own asyncio loop, so these functions also work while trio or trio-asyncio is running.
"""

from tests.services._apt import ensure_chromium
from tests.services._azurite import AzuriteServer, private_azurite
from tests.services._kafka import KafkaBroker, ensure_kafka, kafka_broker, persistent_kafka, private_kafka, stop_kafka
from tests.services._owned import OwnedServer, start_owned, stop_all
from tests.services._ports import free_port_pair
from tests.services._postgres import (
    PostgresServer,
    ensure_postgres,
    private_postgres,
    scratch_database,
    stop_postgres,
    with_database,
)
from tests.services._process import ServiceError
from tests.services._rabbitmq import RabbitNode, ensure_rabbitmq, private_rabbitmq, stop_rabbitmq

__all__ = [
    "AzuriteServer",
    "KafkaBroker",
    "OwnedServer",
    "PostgresServer",
    "RabbitNode",
    "ServiceError",
    "ensure_chromium",
    "ensure_kafka",
    "ensure_postgres",
    "ensure_rabbitmq",
    "free_port_pair",
    "kafka_broker",
    "persistent_kafka",
    "private_azurite",
    "private_kafka",
    "private_postgres",
    "private_rabbitmq",
    "scratch_database",
    "start_owned",
    "stop_all",
    "stop_kafka",
    "stop_postgres",
    "stop_rabbitmq",
    "with_database",
]
