"""Cache-aside against a real Redis: hits, jittered TTLs, negative entries, single-flight,
compare-and-set stores, after-commit invalidation, and failing open when Redis is away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.cache import Cache
from servicekit.db import commit, rollback
from servicekit.embedded_redis import EmbeddedRedis
from servicekit.redis import create_redis
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.integration


class Thing(BaseModel):
    id: int
    name: str


class Loader:
    """A source of truth that counts its calls and can be held until released."""

    def __init__(self, value: Thing | None, *, hold: bool = False) -> None:
        self.value = value
        self.calls = 0
        #: The task that ran the first load (the single-flight leader).
        self.leader: asyncio.Task[object] | None = None
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self) -> Thing | None:
        self.calls += 1
        if self.leader is None:
            self.leader = asyncio.current_task()
        value = self.value  # what the source held when the read began
        self.started.set()
        await self.release.wait()
        return value


def events(name: str, result: str) -> float:
    """``cache_events_total`` for one cache and result, from the process registry."""
    value = REGISTRY.get_sample_value("cache_events_total", {"cache": name, "result": result})
    return value or 0.0


async def wait_until(condition: object, timeout_s: float = 3.0) -> None:
    """Poll a zero-argument callable until it is truthy (fails after ``timeout_s``)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def pending(cache: Cache[Thing]) -> bool:
    """``needs_repair``, read afresh (a function call, so mypy does not narrow it)."""
    return cache.needs_repair


@pytest.fixture
def name() -> str:
    """A cache name of this test alone: its keys and metric labels are its own."""
    return f"t{uuid.uuid4().hex[:8]}"


def make_cache(
    redis: Redis,
    settings: ServiceSettings,
    name: str,
    *,
    ttl_s: float = 300.0,
    negative_ttl_s: float = 5.0,
    jitter: float = 0.1,
) -> Cache[Thing]:
    return Cache(
        redis,
        name=name,
        model=Thing,
        namespace="kit",
        key_prefix=settings.redis.key_prefix,
        ttl_s=ttl_s,
        negative_ttl_s=negative_ttl_s,
        jitter=jitter,
    )


@pytest.fixture
def cache(redis_client: Redis, test_settings: ServiceSettings, name: str) -> Cache[Thing]:
    return make_cache(redis_client, test_settings, name)


@pytest.fixture
async def own_client(
    own_redis: EmbeddedRedis, test_settings: ServiceSettings
) -> AsyncIterator[Redis]:
    client = create_redis(test_settings, own_redis.url)
    yield client
    await client.aclose()


class TestReads:
    async def test_a_hit_does_not_call_the_loader(self, cache: Cache[Thing], name: str) -> None:
        loader = Loader(Thing(id=1, name="one"))
        hits, misses = events(name, "hit"), events(name, "miss")

        assert await cache.get_or_load(1, loader) == Thing(id=1, name="one")
        for _ in range(3):
            assert await cache.get_or_load(1, loader) == Thing(id=1, name="one")

        assert loader.calls == 1
        assert events(name, "miss") - misses == 1
        assert events(name, "hit") - hits == 3

    async def test_the_value_is_stored_as_json_under_a_hash_tagged_key(
        self, cache: Cache[Thing], redis_client: Redis, test_settings: ServiceSettings, name: str
    ) -> None:
        await cache.get_or_load(7, Loader(Thing(id=7, name="seven")))
        key = cache.key(7)
        assert key == f"{test_settings.redis.key_prefix}kit:{name}:v1:{{7}}"
        stored = await redis_client.get(key)
        assert isinstance(stored, str)
        assert Thing.model_validate_json(stored) == Thing(id=7, name="seven")

    async def test_ttls_are_jittered_within_ten_percent(
        self, redis_client: Redis, test_settings: ServiceSettings, name: str
    ) -> None:
        cache = make_cache(redis_client, test_settings, name, ttl_s=100.0, jitter=0.1)
        for ident in range(40):
            await cache.get_or_load(ident, Loader(Thing(id=ident, name="x")))
        ttls = [await redis_client.pttl(cache.key(ident)) for ident in range(40)]

        slack_ms = 2_000  # time spent between the SET and the PTTL
        assert all(90_000 - slack_ms <= ttl <= 110_000 for ttl in ttls), ttls
        assert any(ttl < 100_000 - slack_ms for ttl in ttls), "some expire early"
        assert any(ttl > 100_000 for ttl in ttls), "some expire late"
        assert max(ttls) - min(ttls) > 4_000, "spread over the jitter range"
        assert len(set(ttls)) > 30, "not a handful of fixed values"

    async def test_a_disabled_cache_always_loads_and_stores_nothing(
        self, redis_client: Redis, test_settings: ServiceSettings, name: str
    ) -> None:
        cache = make_cache(redis_client, test_settings, name)
        cache.enabled = False
        loader = Loader(Thing(id=1, name="one"))
        await cache.get_or_load(1, loader)
        await cache.get_or_load(1, loader)
        assert loader.calls == 2
        assert await redis_client.exists(cache.key(1)) == 0


class TestNegativeCaching:
    async def test_absence_is_remembered_for_the_negative_ttl(
        self, redis_client: Redis, test_settings: ServiceSettings, name: str
    ) -> None:
        cache = make_cache(redis_client, test_settings, name, negative_ttl_s=0.5)
        loader = Loader(None)

        assert await cache.get_or_load(404, loader) is None
        assert await cache.get_or_load(404, loader) is None
        assert await cache.get_or_load(404, loader) is None
        assert loader.calls == 1
        assert 0 < await redis_client.pttl(cache.key(404)) <= 550

        # Once the short negative TTL is over, the source is asked again.
        loader.value = Thing(id=404, name="created since")
        deadline = time.monotonic() + 3
        while await redis_client.exists(cache.key(404)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await cache.get_or_load(404, loader) == Thing(id=404, name="created since")
        assert loader.calls == 2

    async def test_invalidation_drops_a_negative_entry(self, cache: Cache[Thing]) -> None:
        loader = Loader(None)
        assert await cache.get_or_load(5, loader) is None
        loader.value = Thing(id=5, name="now it exists")
        await cache.invalidate([5])
        assert await cache.get_or_load(5, loader) == Thing(id=5, name="now it exists")
        assert loader.calls == 2


class TestSingleFlight:
    async def test_fifty_concurrent_misses_load_once(self, cache: Cache[Thing], name: str) -> None:
        loader = Loader(Thing(id=9, name="nine"), hold=True)
        misses = events(name, "miss")

        tasks = [asyncio.create_task(cache.get_or_load(9, loader)) for _ in range(50)]
        # Every request has read Redis and missed before the single load may finish.
        await wait_until(lambda: events(name, "miss") - misses == 50)
        loader.release.set()
        results = await asyncio.gather(*tasks)

        assert loader.calls == 1
        assert results == [Thing(id=9, name="nine")] * 50

    async def test_a_failing_load_fails_every_waiter_and_the_next_read_retries(
        self, cache: Cache[Thing], name: str
    ) -> None:
        calls = 0
        release = asyncio.Event()

        async def broken() -> Thing | None:
            nonlocal calls
            calls += 1
            await release.wait()
            raise LookupError("database away")

        misses = events(name, "miss")
        tasks = [asyncio.create_task(cache.get_or_load(3, broken)) for _ in range(10)]
        await wait_until(lambda: events(name, "miss") - misses == 10)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)

        assert calls == 1
        assert all(isinstance(r, LookupError) for r in results)
        assert await cache.get_or_load(3, Loader(Thing(id=3, name="back"))) == Thing(
            id=3, name="back"
        )

    async def test_a_cancelled_waiter_leaves_the_others_served(
        self, cache: Cache[Thing], name: str
    ) -> None:
        loader = Loader(Thing(id=4, name="four"), hold=True)
        misses = events(name, "miss")
        tasks = [asyncio.create_task(cache.get_or_load(4, loader)) for _ in range(5)]
        await wait_until(lambda: events(name, "miss") - misses == 5)
        waiter = next(task for task in tasks if task is not loader.leader)
        waiter.cancel()
        loader.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)

        assert loader.calls == 1
        for task, result in zip(tasks, results, strict=True):
            if task is waiter:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == Thing(id=4, name="four")

    async def test_a_cancelled_leader_hands_the_load_to_one_waiter(
        self, cache: Cache[Thing], name: str
    ) -> None:
        loader = Loader(Thing(id=6, name="six"), hold=True)
        misses = events(name, "miss")
        tasks = [asyncio.create_task(cache.get_or_load(6, loader)) for _ in range(10)]
        await wait_until(lambda: events(name, "miss") - misses == 10)
        leader = loader.leader
        assert leader is not None
        leader.cancel()  # e.g. its client disconnected
        # The nine read again; one of them leads a new load, the others join it.
        await wait_until(lambda: events(name, "miss") - misses == 19)
        loader.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)

        assert loader.calls == 2, "one load for the nine that were waiting, not nine"
        for task, result in zip(tasks, results, strict=True):
            if task is leader:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == Thing(id=6, name="six")


class TestCompareAndSet:
    @pytest.mark.parametrize("earlier_invalidations", [0, 2])
    async def test_a_load_overtaken_by_an_invalidation_is_not_stored(
        self, cache: Cache[Thing], redis_client: Redis, earlier_invalidations: int
    ) -> None:
        for _ in range(earlier_invalidations):  # the generation counter already exists
            await cache.invalidate([1])
        slow = Loader(Thing(id=1, name="old"), hold=True)
        reader = asyncio.create_task(cache.get_or_load(1, slow))
        await asyncio.wait_for(slow.started.wait(), 3)

        # A writer commits and invalidates while the slow read still holds the old row.
        await cache.invalidate([1])
        slow.release.set()
        assert await reader == Thing(id=1, name="old")  # its own answer, as of its read

        assert await redis_client.exists(cache.key(1)) == 0, "the stale value was stored"
        fresh = Loader(Thing(id=1, name="new"))
        assert await cache.get_or_load(1, fresh) == Thing(id=1, name="new")
        assert fresh.calls == 1
        assert await redis_client.get(f"{cache.key(1)}:gen") == str(earlier_invalidations + 1)

    async def test_a_read_after_an_invalidation_does_not_join_a_load_from_before_it(
        self, cache: Cache[Thing], name: str
    ) -> None:
        slow = Loader(Thing(id=8, name="old"), hold=True)
        before = asyncio.create_task(cache.get_or_load(8, slow))
        await asyncio.wait_for(slow.started.wait(), 3)

        await cache.invalidate([8])  # a write committed: the row now says "new"
        fresh = Loader(Thing(id=8, name="new"))
        after = await asyncio.wait_for(cache.get_or_load(8, fresh), 3)

        assert after == Thing(id=8, name="new"), "read-your-writes: not the pre-write load"
        assert fresh.calls == 1
        slow.release.set()
        assert await before == Thing(id=8, name="old")
        assert await cache.get_or_load(8, Loader(None)) == Thing(id=8, name="new")

    async def test_invalidation_bumps_the_generation_and_deletes_the_value(
        self, cache: Cache[Thing], redis_client: Redis
    ) -> None:
        await cache.get_or_load(2, Loader(Thing(id=2, name="two")))
        assert await redis_client.exists(cache.key(2)) == 1
        await cache.invalidate([2])
        assert await redis_client.exists(cache.key(2)) == 0
        assert await redis_client.get(f"{cache.key(2)}:gen") == "1"
        assert 0 < await redis_client.ttl(f"{cache.key(2)}:gen") <= 86_400


class TestInvalidateAfterCommit:
    async def test_runs_after_commit_only(
        self, cache: Cache[Thing], redis_client: Redis, db_session: AsyncSession
    ) -> None:
        await cache.get_or_load(1, Loader(Thing(id=1, name="one")))
        await db_session.execute(text("SELECT 1"))
        cache.invalidate_after_commit(db_session, [1])
        assert await redis_client.exists(cache.key(1)) == 1, "nothing happens before the commit"

        await commit(db_session)
        assert await redis_client.exists(cache.key(1)) == 0

    async def test_rollback_drops_the_invalidation(
        self, cache: Cache[Thing], redis_client: Redis, db_session: AsyncSession
    ) -> None:
        await cache.get_or_load(1, Loader(Thing(id=1, name="one")))
        await db_session.execute(text("SELECT 1"))
        cache.invalidate_after_commit(db_session, [1])
        await rollback(db_session)
        assert await redis_client.exists(cache.key(1)) == 1

        # Nor does a later transaction of the same session run it.
        await db_session.execute(text("SELECT 1"))
        await commit(db_session)
        assert await redis_client.exists(cache.key(1)) == 1
        assert await redis_client.exists(f"{cache.key(1)}:gen") == 0


class TestRedisAway:
    async def test_reads_fall_back_to_the_loader_and_count_errors(
        self,
        own_redis: EmbeddedRedis,
        own_client: Redis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_client, test_settings, name)
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

        assert loader.calls == 3
        assert events(name, "error") - errors == 3
        after = REGISTRY.get_sample_value(
            "redis_errors_total", {"operation": "cache_read", "outcome": "fail_open"}
        )
        assert (after or 0) - (read_errors or 0) == 3

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
        own_client: Redis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_client, test_settings, name)
        await cache.invalidate([1])  # generation 1
        await cache.get_or_load(1, Loader(Thing(id=1, name="before the outage")))
        # Redis keeps its data across the outage (persistence, or a network partition):
        # the entry that comes back is the one the failed invalidation should have removed.
        await own_client.save()
        own_redis.stop()

        await cache.invalidate([1])
        assert pending(cache)
        await cache.repair()  # still away: stays pending, does not raise
        assert pending(cache)
        during = Loader(Thing(id=1, name="from the database"))
        assert await cache.get_or_load(1, during) == Thing(id=1, name="from the database")
        assert during.calls == 1

        own_redis.start()  # same socket, data reloaded from the snapshot
        assert await own_client.get(cache.key(1)) is not None, "the stale entry is back"
        await cache.repair()

        assert not pending(cache)
        assert await own_client.exists(cache.key(1)) == 0
        assert await own_client.get(f"{cache.key(1)}:gen") == "2"
        fresh = Loader(Thing(id=1, name="after the outage"))
        assert await cache.get_or_load(1, fresh) == Thing(id=1, name="after the outage")
        assert fresh.calls == 1

    async def test_no_stale_read_between_redis_returning_and_the_repair(
        self,
        own_redis: EmbeddedRedis,
        own_client: Redis,
        test_settings: ServiceSettings,
        name: str,
    ) -> None:
        cache = make_cache(own_client, test_settings, name)
        await cache.get_or_load(1, Loader(Thing(id=1, name="before the outage")))
        await own_client.save()
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
        self, redis_client: Redis, test_settings: ServiceSettings
    ) -> None:
        namespace = f"local-{uuid.uuid4().hex[:6]}"

        def instance() -> Cache[Thing]:
            return Cache(
                redis_client,
                name="t",
                model=Thing,
                namespace=namespace,
                key_prefix=test_settings.redis.key_prefix,
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
