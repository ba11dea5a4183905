"""Decode rate of ServerRecords messages, 0.6.4 records (space/name/version) beside 0.25 records (uid).

The 0.25 records take the decoder's fast path for the client's own form (exactly what their msgspec declaration in
`scouter.wire.v025` accepts; the declaration itself words every error) and are then filed under their entity
(`scouter.entities.resolve_uids`); the 0.6.4 ones take the hand-written decoder. Both figures are printed so
the uid path can be compared with the 0.6.4 floor measured in the same run (issue 17: no worse than ~207 k/s).

    python -m tests.bench.bench_decode
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

import orjson

from scouter.entities import Entity, resolve_uids
from scouter.records import decode_server_records

RECORDS_PER_MESSAGE = 30
MESSAGES = 2000
UID = "01a24ebd-608d-73a9-be09-51cfaa661a3e"


def _stamp(i: int) -> str:
    moment = dt.datetime(2026, 12, 7, 4, 22, 45, tzinfo=dt.UTC) + dt.timedelta(microseconds=i)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def messages(flavour: str) -> list[bytes]:
    out = []
    for m in range(MESSAGES):
        records = []
        for r in range(RECORDS_PER_MESSAGE):
            body = {"created_at": _stamp(m * RECORDS_PER_MESSAGE + r), "feature": f"feature_{r % 3}", "value": r * 0.5}
            if flavour == "0.25":
                body |= {"uid": UID, "entity_id": 0}
            else:
                body |= {"space": "bench", "name": "model", "version": "1.0.0"}
            records.append({"Spc": body})
        out.append(orjson.dumps({"records": records}))
    return out


def rate(payloads: Sequence[bytes], decode: Callable[[bytes], object], rounds: int = 3) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for payload in payloads:
            decode(payload)
        elapsed = time.perf_counter() - started
        best = max(best, len(payloads) * RECORDS_PER_MESSAGE / elapsed)
    return best


def main() -> None:
    entities = {UID: Entity(UID, "bench", "model", "1.0.0", "Spc")}
    old, new = messages("0.6.4"), messages("0.25")
    # the same rows, whichever flavour they came in
    assert decode_server_records(old[0]).spc_rows == resolve_uids(decode_server_records(new[0]), entities).spc_rows
    figures = {
        "0.6.4 records (space/name/version)": rate(old, decode_server_records),
        "0.25 records (uid), decode only": rate(new, decode_server_records),
        "0.25 records, decode + file under uid": rate(new, lambda p: resolve_uids(decode_server_records(p), entities)),
    }
    for label, value in figures.items():
        print(f"  {label:<48} {value:>10,.0f} records/s")
    baseline = figures["0.6.4 records (space/name/version)"]
    print(f"ratio 0.25 decode + file / 0.6.4 decode: {figures['0.25 records, decode + file under uid'] / baseline:.2f}")


if __name__ == "__main__":
    main()
