"""The writer's SPC summaries (asyncio side, inside the writer's transaction): the entities' SPC limits, cached, and
the summary rows of the transaction's SPC rows (`scouter.spc_summaries`), inserted beside them.

The cache may be behind a profile update by up to ``ttl`` seconds: harmless, since every summary carries the stamp
of the limits and rule it was judged with and the check uses it only under a profile with the same stamp (a summary
judged with old limits is read raw instead). Segments, which make a window complete, come from a trigger whatever
happens here.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import attrs
import orjson

from scouter.profiles import SpcDriftProfile, profile_from_data
from scouter.spc_summaries import EntityLimits, entity_limits, summarize
from scouter.sql import INSERT_SPC_SUMMARIES, SPC_PROFILES_OF

log = logging.getLogger("actors.writer")

Entity = tuple[str, str, str]
#: (space, name, version) of a row in `scouter.records.SPC_COLUMNS` order; C-level, for every row of a transaction.
_ENTITY_OF_ROW = operator.itemgetter(2, 1, 3)


def _limits_of(document: str) -> EntityLimits | None:
    try:
        profile = profile_from_data("Spc", orjson.loads(document))
    except Exception as exc:  # a profile the check would fail on too: its rows are simply read raw
        log.debug("SPC profile not usable for summaries: %r", exc)
        return None
    return entity_limits(profile) if isinstance(profile, SpcDriftProfile) else None


@attrs.define
class SpcSummaryWriter:
    ttl: float = 5.0  # seconds an entity's limits are trusted before they are read again
    most: int = 10_000  # entities kept; past it, the stale ones are forgotten (any number of names may be sent)
    _known: dict[Entity, tuple[float, EntityLimits | None]] = attrs.Factory(dict)

    async def _limits(self, conn: asyncpg.Connection, entities: set[Entity]) -> dict[Entity, EntityLimits | None]:
        now = time.monotonic()
        stale = [e for e in entities if e not in self._known or now - self._known[e][0] > self.ttl]
        if stale:
            found = await conn.fetch(SPC_PROFILES_OF, *(list(column) for column in zip(*stale, strict=True)))
            fresh: dict[Entity, EntityLimits | None] = dict.fromkeys(stale)
            for row in found:
                fresh[row["space"], row["name"], row["version"]] = _limits_of(row["profile"])
            if len(self._known) + len(fresh) > self.most:
                self._known = {e: known for e, known in self._known.items() if now - known[0] <= self.ttl}
            for entity, limits in fresh.items():
                self._known[entity] = (now, limits)
        return {e: self._known[e][1] for e in entities}

    async def store_with(
        self, conn: asyncpg.Connection, rows: Sequence[Sequence[Any]], copy: Callable[[], Awaitable[Any]]
    ) -> int:
        """Await ``copy()`` (the COPY of ``rows``, one transaction's SPC rows in `scouter.records.SPC_COLUMNS` order),
        then insert their summaries. The summaries are computed in a worker thread meanwhile: the COPY mostly waits
        for the server, so they cost the writer little of its own thread."""
        limits = await self._limits(conn, set(map(_ENTITY_OF_ROW, rows)))
        if not any(known is not None for known in limits.values()):
            # No SPC profile judges these rows (or none usable): nothing to summarise. Not even a thread to start,
            # whose grouping of the rows would take the GIL from the COPY that this thread feeds.
            await copy()
            return 0
        computing = asyncio.get_running_loop().run_in_executor(None, summarize, rows, limits)
        try:
            await copy()
        finally:
            summaries = await computing
        if summaries:
            await conn.execute(INSERT_SPC_SUMMARIES, *(list(column) for column in zip(*summaries, strict=True)))
        return len(summaries)
