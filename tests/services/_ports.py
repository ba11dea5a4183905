"""TCP ports for the test services: free ones outside the kernel's ephemeral range, and whether one answers."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from tests.services._process import ServiceError


def _local_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str = "127.0.0.1", *, low: int = 20000, high: int = 32000) -> int:
    """A port that binds now, chosen outside the kernel's ephemeral range.

    Outside that range no outgoing connection can take the port while a server is stopped for a restart test.
    """
    eph_low, eph_high = _local_port_range()
    candidates = [p for p in range(low, high) if not eph_low <= p <= eph_high]
    for port in random.sample(candidates, k=min(200, len(candidates))):
        if _port_is_free(port, host):
            return port
    raise ServiceError(f"no free TCP port in {low}-{high} on {host}")


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port whose next one is free too (the server's API and metrics ports), both outside the ephemeral range:
    a server that rebinds them in place (SIGHUP) cannot find one taken by its own new outgoing connections."""
    eph_low, eph_high = _local_port_range()
    for _ in range(200):
        port = _free_port(host)
        if not eph_low <= port + 1 <= eph_high and _port_is_free(port + 1, host):
            return port
    raise ServiceError(f"no free pair of TCP ports on {host}")


def _tcp_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
