"""Cache-aside when Redis is away, and the in-process tier invalidated across instances.

While Redis is away the cache fails open, and it is repaired afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from servicekit.redis import AnyRedis, create_redis
from servicekit.redis.breaker import RedisCircuitOpen
from servicekit.redis.cache import Cache
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.redis.keys import KeySpace
from servicekit.settings import ServiceSettings

from .utils.cache import Loader, Thing, events, make_cache, pending

pytestmark = pytest.mark.integration


class TestRedisAway:
    async def test_reads_fall_back_to_the_loader_and_count_errors(
        self,
        own_redis: EmbeddedRedis,
        own_redis_client: AnyRedis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_redis_client, test_settings, name)
        own_redis.stop()
        loader = Loader(Thing(id=1, name="from the database"))
        errors = events(name, "error")
        read_errors = REGISTRY.get_sample_value(
            "redis_errors_total", {"operation": "cache_read", "outcome": "fail_open"}
        )

        started = time.monotonic()
        for _ in range(3):
            assert await cache.get_or_load(1, loader) == Thing(id=1, name="from the database")
        assert time.monotonic() - started < 3

        assert loader.calls == 1  # within the outage memo's half second: one load shared
        assert events(name, "error") - errors == 3
        after = REGISTRY.get_sample_value(
            "redis_errors_total", {"operation": "cache_read", "outcome": "fail_open"}
        )
        assert (after or 0) - (read_errors or 0) == 3

    async def test_the_source_sees_one_load_per_key_and_interval(
        self,
        own_redis: EmbeddedRedis,
        own_redis_client: AnyRedis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_redis_client, test_settings, name)
        own_redis.stop()
        loader = Loader(Thing(id=1, name="db"), hold=True)
        reads = [asyncio.create_task(cache.get_or_load(1, loader)) for _ in range(20)]
        await loader.started.wait()
        loader.release.set()
        assert await asyncio.gather(*reads) == [Thing(id=1, name="db")] * 20
        assert loader.calls == 1  # concurrent reads shared one load
        other = Loader(Thing(id=2, name="other"))
        assert await cache.get_or_load(2, other) == Thing(id=2, name="other")
        assert other.calls == 1  # per key

        await asyncio.sleep(0.6)  # past the memo's half second: the source is asked again
        loader.value = Thing(id=1, name="changed elsewhere")
        assert await cache.get_or_load(1, loader) == Thing(id=1, name="changed elsewhere")
        assert loader.calls == 2

    async def test_a_write_here_is_read_at_once_during_the_outage(
        self,
        own_redis: EmbeddedRedis,
        own_redis_client: AnyRedis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_redis_client, test_settings, name)
        own_redis.stop()
        loader = Loader(Thing(id=1, name="old"))
        assert await cache.get_or_load(1, loader) == Thing(id=1, name="old")

        await cache.invalidate([1])  # a write committed here; Redis cannot hear of it

        loader.value = Thing(id=1, name="new")
        assert await cache.get_or_load(1, loader) == Thing(id=1, name="new")
        assert await cache.get_or_load(1, loader) == Thing(id=1, name="new")

    async def test_a_closed_port_is_no_different(
        self, test_settings: ServiceSettings, name: str
    ) -> None:
        client = create_redis(test_settings, "redis://127.0.0.1:1/0")  # nothing listens there
        try:
            cache = make_cache(client, test_settings, name)
            errors = events(name, "error")
            loader = Loader(Thing(id=1, name="db"))
            assert await cache.get_or_load(1, loader) == Thing(id=1, name="db")
            await cache.invalidate([1])  # must not raise either
            assert loader.calls == 1
            assert events(name, "error") - errors == 2
            assert pending(cache)
        finally:
            await client.aclose()

    async def test_a_failed_invalidation_is_repaired_when_redis_returns(
        self,
        own_redis: EmbeddedRedis,
        own_redis_client: AnyRedis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_redis_client, test_settings, name)
        await cache.invalidate([1])  # generation 1
        await cache.get_or_load(1, Loader(Thing(id=1, name="before the outage")))
        # Redis keeps its data across the outage (persistence, or a network partition):
        # the entry that comes back is the one the failed invalidation should have removed.
        await own_redis_client.save()
        own_redis.stop()

        await cache.invalidate([1])
        assert pending(cache)
        await cache.repair()  # still away: stays pending, does not raise
        assert pending(cache)
        during = Loader(Thing(id=1, name="from the database"))
        assert await cache.get_or_load(1, during) == Thing(id=1, name="from the database")
        assert during.calls == 1

        own_redis.start()  # same socket, data reloaded from the snapshot
        # The failures opened the client's circuit: after the cool-down, its background
        # probe closes it.
        await _answering(own_redis_client, within_s=test_settings.redis.breaker_cooldown_s + 2)
        assert await own_redis_client.get(cache.key(1)) is not None, "the stale entry is back"
        await cache.repair()

        assert not pending(cache)
        assert await own_redis_client.exists(cache.key(1)) == 0
        assert await own_redis_client.get(f"{cache.key(1)}:gen") == "2"
        fresh = Loader(Thing(id=1, name="after the outage"))
        assert await cache.get_or_load(1, fresh) == Thing(id=1, name="after the outage")
        assert fresh.calls == 1

    async def test_no_stale_read_between_redis_returning_and_the_repair(
        self,
        own_redis: EmbeddedRedis,
        own_redis_client: AnyRedis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_redis_client, test_settings, name)
        await cache.get_or_load(1, Loader(Thing(id=1, name="before the outage")))
        await own_redis_client.save()
        own_redis.stop()
        await cache.invalidate([1])  # fails: pending
        own_redis.start()

        # Nobody called repair() yet; the read must still not serve the pre-write value.
        fresh = Loader(Thing(id=1, name="written during the outage"))
        assert await cache.get_or_load(1, fresh) == Thing(id=1, name="written during the outage")
        assert fresh.calls == 1
        assert not pending(cache)


@pytest.mark.integration
class TestLocalTier:
    async def test_invalidation_on_one_instance_drops_the_other_s_local_copy(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        namespace = f"local-{uuid.uuid4().hex[:6]}"

        def instance() -> Cache[Thing]:
            return Cache(
                redis_client,
                name="t",
                model=Thing,
                keys=KeySpace(namespace, test_settings.redis.key_prefix),
                local_size=100,
            )

        a, b = instance(), instance()
        await a.start()
        await b.start()
        try:
            for _ in range(200):  # the feeds start in the background
                if a.local and a.local.feed.fresh and b.local and b.local.feed.fresh:
                    break
                await asyncio.sleep(0.01)
            loads: list[str] = []
            version = {"name": "v1"}

            async def load() -> Thing:
                loads.append(version["name"])
                return Thing(id=1, name=version["name"])

            assert await a.get_or_load(1, load) == Thing(id=1, name="v1")
            assert a.local is not None
            assert a.local.get(a.key(1)) == (True, Thing(id=1, name="v1"))  # held locally
            assert await a.get_or_load(1, load) == Thing(id=1, name="v1")
            assert loads == ["v1"]
            version["name"] = "v2"
            await b.invalidate([1])
            seen = None
            for _ in range(100):  # within a second, via the change feed
                seen = await a.get_or_load(1, load)
                if seen is not None and seen.name == "v2":
                    break
                await asyncio.sleep(0.01)
            assert seen == Thing(id=1, name="v2")
        finally:
            await a.stop()
            await b.stop()


async def _answering(client: AnyRedis, *, within_s: float) -> None:
    """Wait until ``client`` answers again (calls are refused until its circuit closes)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            await client.ping()
            return
        except RedisCircuitOpen:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
