"""Mail preferences: optional kinds can be switched off, security notices cannot.

Reads go through a cache (Redis, with an in-process tier whose entries every instance drops
when a write is published), so the hot ``GET`` touches no database; every write invalidates
its user's entry once it has committed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pydantic import BaseModel

from notification_service.errors import SecurityMailRequired, UnknownMailKind
from notification_service.repositories import PreferencesRepository
from notification_service.schemas.api import MailKindRead, PreferencesRead
from notification_service.services.kinds import KINDS
from servicekit.redis import Cache, KeySpace

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession, ConnectionSource
    from servicekit.redis import AnyRedis
    from servicekit.settings import ServiceSettings


class MutedKinds(BaseModel):
    """What the cache keeps of a user's preferences."""

    kinds: list[str] = []


PreferencesCache = Cache[MutedKinds]


def preferences_cache(settings: ServiceSettings, redis: AnyRedis) -> PreferencesCache:
    """The cache of every user's muted kinds (start it for the in-process tier's feed)."""
    return Cache(
        redis,
        name="preferences",
        model=MutedKinds,
        keys=KeySpace.of(settings),
        ttl_s=300.0,
        local_size=10_000,
        local_ttl_s=30.0,
    )


async def preferences_json(
    cache: PreferencesCache, user_id: uuid.UUID, open_connection: ConnectionSource
) -> bytes:
    """``PreferencesRead`` of ``user_id`` as JSON (a database read on a cache miss only)."""

    async def load() -> MutedKinds:
        async with open_connection() as connection:
            return MutedKinds(kinds=await PreferencesRepository.muted_on(connection, user_id))

    muted = await cache.get_or_load(user_id, load)
    return _view_json(frozenset(muted.kinds if muted else ()))


@functools.cache
def _view_json(muted: frozenset[str]) -> bytes:
    # A handful of combinations exist (subsets of the optional kinds): each encoded once.
    return _view(muted).model_dump_json().encode()


async def update_preferences(
    session: AsyncSession, cache: PreferencesCache, user_id: uuid.UUID, muted: list[str]
) -> PreferencesRead:
    """Switch the ``muted`` kinds off and every other kind on."""
    for name in muted:
        kind = KINDS.get(name)
        if kind is None:
            raise UnknownMailKind(f"No kind of mail is called {name!r}.")
        if kind.security:
            raise SecurityMailRequired(f"{name!r} is a security notice; it is always sent.")
    saved = await PreferencesRepository.from_session(session).set_muted(user_id, frozenset(muted))
    cache.invalidate_after_commit(session, [user_id])
    return _view(frozenset(saved.muted_kinds))


def _view(muted: frozenset[str]) -> PreferencesRead:
    return PreferencesRead(
        kinds=[
            MailKindRead(kind=name, security=kind.security, enabled=name not in muted)
            for name, kind in KINDS.items()
        ]
    )
