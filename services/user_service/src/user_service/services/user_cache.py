"""Cached user reads, and invalidation of every user write after it commits."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from servicekit.redis.cache import Cache
from user_service.models import User
from user_service.repositories import UserRepository
from user_service.schemas.user import UserSnapshot

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session as OrmSession

    from servicekit.db import AsyncSession, ConnectionSource, SessionHook

UserCache = Cache[UserSnapshot]


@dataclass(frozen=True, slots=True)
class CachedUsers:
    """Users read through the cache, as the snapshots responses are built from."""

    cache: UserCache

    async def get(
        self, user_id: uuid.UUID, open_connection: ConnectionSource
    ) -> UserSnapshot | None:
        """The user by id (``None`` if there is no such user).

        ``open_connection`` is only called on a miss: a cache hit touches no database.
        """

        async def load() -> UserSnapshot | None:
            async with open_connection() as connection:
                row = await UserRepository.public_fields(connection, user_id)
                return UserSnapshot.model_validate(row) if row is not None else None

        return await self.cache.get_or_load(user_id, load)


def invalidate_user_writes(cache: UserCache) -> SessionHook:
    """A session hook: any flushed change to a user drops its cache entry once committed.

    A change is an insert, update or delete, whichever code path made it; the entry is dropped
    once the transaction commits.
    """
    marker = f"user_cache_watch:{id(cache)}"

    def hook(session: AsyncSession) -> None:
        sync_session = session.sync_session
        if sync_session.info.get(marker):
            return
        sync_session.info[marker] = True

        def after_flush(flushed: OrmSession, _context: Any) -> None:
            changed = {
                obj.id
                for obj in chain(flushed.new, flushed.dirty, flushed.deleted)
                if isinstance(obj, User)
            }
            if changed:
                cache.invalidate_after_commit(session, changed)

        event.listen(sync_session, "after_flush", after_flush)

    return hook
