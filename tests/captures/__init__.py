"""Upstream traffic captured from the real scouter-ml 0.6.4 client and server, kept in the repository so a clone
alone runs the tests (copied verbatim from the project's shared spec folder, `spec/captures`).

- http_session.jsonl: one JSON object per exchange of a client session (method, path, status, bodies).
- kafka_messages.json / rabbitmq_messages.json: the messages the client's queues published.

Captures of another client version go in a sibling folder named after it (e.g. `tests/captures/v025/`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent


def http_session() -> list[dict[str, Any]]:
    """Every line of the captured client session, in order."""
    return [json.loads(line) for line in (CAPTURES / "http_session.jsonl").read_text().splitlines() if line]


def broker_messages(name: str) -> list[dict[str, Any]]:
    """The captured messages of one broker: `kafka` or `rabbitmq`."""
    messages: list[dict[str, Any]] = json.loads((CAPTURES / f"{name}_messages.json").read_text())
    return messages
