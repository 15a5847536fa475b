"""Fixtures of the chassis tests.

They provide the tiny service of ``utils/items.py`` and the cache tests' per-test cache.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.app import create_app
from servicekit.redis import AnyRedis
from servicekit.redis.cache import Cache
from servicekit.settings import ServiceSettings

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
