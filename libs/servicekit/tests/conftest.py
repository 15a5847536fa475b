"""Fixtures of the chassis tests.

They provide the tiny service of ``utils/items.py``, the cache tests' per-test cache, and the
event tests' tables, committing sessions and key space.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from servicekit.app import create_app
from servicekit.db import AsyncSession, create_sessionmaker
from servicekit.redis import AnyRedis, KeySpace
from servicekit.redis.cache import Cache
from servicekit.settings import ServiceSettings

from .utils import events
from .utils.cache import Thing, make_cache
from .utils.items import Base, items_router


@pytest.fixture(scope="session")
async def kit_tables(db_engine: AsyncEngine) -> AsyncIterator[None]:
    async with db_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    async with db_engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)


@pytest.fixture
def kit_app(test_settings: ServiceSettings, kit_tables: None) -> FastAPI:
    return create_app(test_settings, [items_router()])


# The cache tests (test_cache.py, test_cache_degraded.py).
@pytest.fixture
def name() -> str:
    """A cache name of this test alone: its keys and metric labels are its own."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cache(redis_client: AnyRedis, test_settings: ServiceSettings, name: str) -> Cache[Thing]:
    return make_cache(redis_client, test_settings, name)


# The event tests (test_outbox.py, test_consumers.py).
@pytest.fixture(scope="module")
async def event_tables(db_engine: AsyncEngine) -> AsyncIterator[None]:
    async with db_engine.begin() as conn:
        await conn.run_sync(events.METADATA.create_all)
    yield
    async with db_engine.begin() as conn:
        await conn.run_sync(events.METADATA.drop_all)


@pytest.fixture
async def sessionmaker(
    db_engine: AsyncEngine, event_tables: None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that really commit (the relay and consumers use transactions of their own)."""
    yield create_sessionmaker(db_engine)
    async with db_engine.begin() as conn:
        for table in (
            events.TABLES.events,
            events.TABLES.keys,
            events.INBOX.events,
            events.EFFECTS,
        ):
            await conn.execute(table.delete())


@pytest.fixture
def keys(test_settings: ServiceSettings) -> KeySpace:
    """A key space of this test alone: its streams are its own."""
    return KeySpace(f"events{uuid.uuid4().hex[:8]}", test_settings.redis.key_prefix)
