"""The superset profile (server-v025.md §13.4): one download both clients parse, whichever registered it.

The request of ``GET /scouter/profile`` is identical from both clients, so the answer must satisfy both parsers:
scouter-ml 0.25 requires ``config.uid`` (every type), ``config.binning_strategy`` (PSI) and custom conditions with
``baseline_value``; 0.6.4 ignores fields it does not know. The stored document stays in its registering client's own
spelling (the poller reads both); the superset is built on the way out.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["DEFAULT_BINNING_STRATEGY", "superset_document"]

#: What scouter-ml 0.25 requires of a PSI profile and 0.6.4 never wrote; the bins themselves are explicit, so the
#: value is only there to be parsed (server-v025.md §13.4, the verified default).
DEFAULT_BINNING_STRATEGY: Final = {"QuantileBinning": {"num_bins": 10}}


def superset_document(drift_type: str, document: dict[str, Any], uid: str, version: str) -> dict[str, Any]:
    """A stored profile document as both clients accept it (server-v025.md §13.4): ``config.uid`` and
    ``config.version`` of the entity, a PSI ``binning_strategy`` when missing, and every custom condition in both
    spellings. `document` is not modified."""
    doc: dict[str, Any] = orjson.loads(orjson.dumps(document))
    config = doc.get("config")
    if not isinstance(config, dict):
        return doc
    config["uid"] = uid
    config["version"] = version
    if drift_type == "Psi":
        config.setdefault("binning_strategy", DEFAULT_BINNING_STRATEGY)
    elif drift_type == "Custom":
        metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
        alert = config.get("alert_config")
        conditions = alert.get("alert_conditions") if isinstance(alert, dict) else None
        if isinstance(conditions, dict):
            for metric, condition in conditions.items():
                if not isinstance(condition, dict):
                    continue
                margin = condition.get("alert_threshold_value")
                if margin is None:
                    margin = condition.get("delta")
                condition["alert_threshold_value"] = margin
                condition["delta"] = margin
                if condition.get("baseline_value") is None:
                    condition["baseline_value"] = metrics.get(metric, 0.0)
    return doc
