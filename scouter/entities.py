"""Entities (server-v025.md §4): one (space, name, version, drift_type), named on the wire by a server-assigned uid.

The uid is `drift_profile.uid`: created at the first registration of the entity by either client, kept when the
entity is registered again, never reused. scouter-ml 0.25 names the entity by uid alone in its records, drift
queries and alert queries; the server maps the uid back to the entity and stores and queries rows exactly as for a
0.6.4 record of that entity, so both clients read each other's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import attrs
import msgspec

from scouter.records import CustomRow, DecodedBatch, DecodeError, PsiRow, SpcRow, UidRow

__all__ = ["Entity", "UnknownUid", "resolve_uids", "uids_of"]

#: Which rows each record kind makes, for the message when a record's kind is not its entity's drift type.
_KIND_NAMES: Final = {"Spc": "an SPC", "Psi": "a PSI", "Custom": "a custom-metric"}


@attrs.frozen
class Entity:
    uid: str
    space: str
    name: str
    version: str
    drift_type: str


class UnknownUid(DecodeError):
    """A record or query named a uid no profile has (or one of an entity of another drift type)."""


def uids_of(rows: Iterable[UidRow]) -> set[str]:
    """The distinct uids of unresolved 0.25 records."""
    return {row[1] for row in rows}


def resolve_uids(batch: DecodedBatch, entities: Mapping[str, Entity]) -> DecodedBatch:
    """`batch` with its 0.25 records filed under their own uid's entity (upstream files a whole message under the
    first record's). Raises `UnknownUid` naming the first uid that has no entity, or whose entity is of another drift
    type than the record (a client bug: storing it under a guess would corrupt another profile's data)."""
    if not batch.uid_rows:
        return batch
    spc: list[SpcRow] = list(batch.spc_rows)
    psi: list[PsiRow] = list(batch.psi_rows)
    custom: list[CustomRow] = list(batch.custom_rows)
    first_space = batch.first_space
    for kind, uid, created_at, label, number, bin_count in batch.uid_rows:
        entity = entities.get(uid)
        if entity is None:
            raise UnknownUid(f"uid {uid!r}: no registered profile has this uid")
        if entity.drift_type != kind:
            raise UnknownUid(
                f"uid {uid!r}: {_KIND_NAMES[kind]} record for a {entity.drift_type} profile "
                f"({entity.space}/{entity.name}/{entity.version})"
            )
        if first_space is None:
            first_space = entity.space
        if kind == "Spc":
            spc.append((created_at, entity.name, entity.space, entity.version, label, float(number)))
        elif kind == "Psi":
            assert bin_count is not None  # decoded PSI rows always carry their count
            psi.append((created_at, entity.name, entity.space, entity.version, label, int(number), bin_count))
        else:
            custom.append((created_at, entity.name, entity.space, entity.version, label, float(number)))
    return msgspec.structs.replace(
        batch,
        spc_rows=tuple(spc),
        psi_rows=tuple(psi),
        custom_rows=tuple(custom),
        first_space=first_space,
        uid_rows=(),
    )
