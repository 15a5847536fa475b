"""A burst of Redis commands larger than the pool waits for connections; none fails."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from servicekit.redis import create_redis, discover
from servicekit.settings import ServiceSettings
from servicekit.testing.backends import Backends

pytestmark = pytest.mark.integration


async def test_a_burst_past_the_pool_size_waits_instead_of_failing(
    test_settings: ServiceSettings, servicekit_backends: Backends
) -> None:
    # On one server the blocking pool makes the burst wait. redis-py's cluster client has
    # no blocking pool: past its size a command fails with MaxConnectionsError, and the
    # client's recovery from that error closes connections other commands are using
    # (AttributeError: 'NoneType' object has no attribute 'writelines').
    redis = test_settings.redis.model_copy(update={"max_connections": 4})
    client = create_redis(test_settings.model_copy(update={"redis": redis}))
    await discover(client)
    keys = [f"{servicekit_backends.redis_key_prefix}burst:{i}" for i in range(400)]
    try:
        results = await asyncio.gather(
            *(client.set(k, 1, ex=60) for k in keys), return_exceptions=True
        )
        assert all(r is True for r in results), Counter(type(r).__name__ for r in results)
    finally:
        for k in keys:
            await client.delete(k)
        await client.aclose()
