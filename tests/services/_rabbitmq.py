"""RabbitMQ for the tests: one that answers (environment or guest@127.0.0.1:5672), else a private node of ours."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from tests.services._apt import _apt_get_install
from tests.services._owned import OwnedServer, _forced_private, _lock, _private_server, forget_at_stop_all, start_owned
from tests.services._ports import _free_port, _port_is_free, _tcp_answers
from tests.services._process import ServiceError, _is_root, _run_async

ENV_RABBITMQ_URL = "SCOUTER_TEST_RABBITMQ_URL"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
RABBITMQ_LIB_BIN = Path("/usr/lib/rabbitmq/bin")

log = logging.getLogger(__name__)

_rabbitmq_url: str | None = None
_rabbitmq_node: RabbitNode | None = None


def _forget_rabbitmq() -> None:
    global _rabbitmq_url, _rabbitmq_node
    _rabbitmq_url = _rabbitmq_node = None


forget_at_stop_all(_forget_rabbitmq)


async def _amqp_login(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=3)
    await connection.close()


def _amqp_answers(url: str, timeout: float = 8) -> bool:
    """True when a full AMQP handshake and login succeed at `url`."""
    parts = urllib.parse.urlsplit(url)
    # a closed port is answered at once; this also spares aiormq's ERROR log line for every refused attempt
    if not _tcp_answers(parts.hostname or "127.0.0.1", parts.port or 5672):
        return False
    try:
        _run_async(lambda: _amqp_login(url), timeout=timeout)
    except Exception as exc:
        log.debug("no RabbitMQ at %s: %r", url, exc)
        return False
    return True


def _ensure_rabbitmq_installed() -> None:
    """apt-get install rabbitmq-server when its scripts are missing (root only; `apt-get update` once)."""
    if (RABBITMQ_LIB_BIN / "rabbitmq-server").exists():
        return
    if not _is_root():
        raise ServiceError(
            f"RabbitMQ is not installed ({RABBITMQ_LIB_BIN}/rabbitmq-server missing) and only root may "
            "apt-get install rabbitmq-server; install it or set " + ENV_RABBITMQ_URL
        )
    log_path = _apt_get_install("rabbitmq-server")
    if not (RABBITMQ_LIB_BIN / "rabbitmq-server").exists():
        raise ServiceError(
            f"apt-get installed rabbitmq-server but {RABBITMQ_LIB_BIN}/rabbitmq-server is missing (log: {log_path})"
        )


_node_counter = 0


class RabbitNode(OwnedServer):
    """A private RabbitMQ node: its own node name, ports, directories and Erlang cookie (HOME).

    It runs in the foreground under the package's own script (not -detached) so it is our child: SIGTERM makes the
    script stop the node gracefully, and the node dies with us if pytest is killed. `stop()` + `start()` keeps the
    node name, ports and Mnesia directory, so durable queues and persistent messages survive a restart.
    """

    start_timeout = 120
    stop_timeout = 60  # the script turns SIGTERM into a graceful Erlang shutdown

    def __init__(self) -> None:
        global _node_counter
        _ensure_rabbitmq_installed()
        super().__init__("rabbitmq", "rabbitmq.log")
        with _lock:
            _node_counter += 1
            self.nodename = f"scouter-test-{os.getpid()}-{_node_counter}-{secrets.token_hex(2)}@localhost"
        # The distribution port binds 0.0.0.0; CLI tools use +10000..+10010 from it, so keep it low.
        self.dist_port = _free_port("0.0.0.0", low=20000, high=25000)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # shadow /etc/rabbitmq/rabbitmq-env.conf

    def __repr__(self) -> str:
        return f"RabbitNode({self.nodename}, port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        root = str(self.root)
        env.update(
            {
                "HOME": root,  # the Erlang cookie lives here
                "RABBITMQ_NODENAME": self.nodename,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": f"{root}/mnesia",
                "RABBITMQ_LOG_BASE": f"{root}/log",
                "RABBITMQ_LOGS": "-",  # everything into our one log file
                "RABBITMQ_PID_FILE": f"{root}/rabbit.pid",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{root}/enabled_plugins",
                "RABBITMQ_CONFIG_FILE": f"{root}/rabbitmq",
                "RABBITMQ_ADVANCED_CONFIG_FILE": f"{root}/advanced.config",
                "RABBITMQ_CONF_ENV_FILE": f"{root}/rabbitmq-env.conf",
            }
        )
        return env

    def _start(self, timeout: float) -> None:
        """Start the node and wait until guest can log in over AMQP."""
        if not _port_is_free(self.port, "127.0.0.1"):
            raise ServiceError(f"RabbitMQ node {self.nodename}: port {self.port} is taken (log: {self.log_path})")
        self._run(
            f"RabbitMQ node {self.nodename} on 127.0.0.1:{self.port}",
            [str(RABBITMQ_LIB_BIN / "rabbitmq-server")],
            env=self._env(),
            ready=lambda: _amqp_answers(self.url, timeout=5),
            timeout=timeout,
            interval=0.25,
        )


def ensure_rabbitmq() -> str:
    """An amqp URL: $SCOUTER_TEST_RABBITMQ_URL or guest@127.0.0.1:5672 if they answer, else a private node."""
    global _rabbitmq_url, _rabbitmq_node
    with _lock:
        if _rabbitmq_url is not None and (_rabbitmq_node is None or _rabbitmq_node.running):
            return _rabbitmq_url
        if not _forced_private("rabbitmq"):
            for url in (os.environ.get(ENV_RABBITMQ_URL), DEFAULT_RABBITMQ_URL):
                if url and _amqp_answers(url):
                    _rabbitmq_url, _rabbitmq_node = url, None
                    return url
                if url and url == os.environ.get(ENV_RABBITMQ_URL):
                    log.warning("%s=%s does not answer; looking further", ENV_RABBITMQ_URL, url)
        _rabbitmq_node = start_owned(RabbitNode())
        _rabbitmq_url = _rabbitmq_node.url
        return _rabbitmq_url


def stop_rabbitmq() -> None:
    """Stop the node `ensure_rabbitmq` started, if it started one; forget the cached URL."""
    global _rabbitmq_url, _rabbitmq_node
    with _lock:
        if _rabbitmq_node is not None:
            _rabbitmq_node.close()
        _rabbitmq_url = _rabbitmq_node = None


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[RabbitNode]:
    """A started RabbitMQ node of our own (never the shared one), stopped and removed on exit: for fault tests."""
    with _private_server(RabbitNode()) as node:
        yield node
