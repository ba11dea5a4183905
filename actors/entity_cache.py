"""uid → entity lookups in front of `drift_profile` (server-v025.md §4), for the HTTP routes and the consumers.

A uid never changes its entity (it is the row's primary key and no route deletes profiles or renames them), so a
found entity can stay cached as long as there is room; an unknown uid is not cached, because it may be registered a
moment later. Bounded LRU, one per actor: the HTTP front-end and each consumer keep their own.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import cachetools

from scouter.entities import Entity
from scouter.sql import ENTITIES_BY_UID

from .database import Database

#: Upstream's ENTITY_CACHE_MAX_SIZE default.
DEFAULT_SIZE = 1000


@attrs.define
class EntityCache:
    size: int = DEFAULT_SIZE
    _cache: cachetools.LRUCache[str, Entity] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._cache = cachetools.LRUCache(maxsize=self.size)

    async def lookup(self, db: Database, uids: Iterable[str]) -> dict[str, Entity]:
        """The entities of the known `uids` (unknown ones are simply absent), with one query for the uncached."""
        found: dict[str, Entity] = {}
        missing: list[str] = []
        for uid in uids:
            if "\x00" in uid:  # PostgreSQL text cannot hold NUL, so no profile has such a uid (and asking fails)
                continue
            entity = self._cache.get(uid)
            if entity is None:
                missing.append(uid)
            else:
                found[uid] = entity
        if missing:
            for row in await db.fetch(ENTITIES_BY_UID, missing):
                entity = Entity(row["uid"], row["space"], row["name"], row["version"], row["drift_type"])
                self._cache[entity.uid] = entity
                found[entity.uid] = entity
        return found

    async def one(self, db: Database, uid: str) -> Entity | None:
        return (await self.lookup(db, (uid,))).get(uid)
