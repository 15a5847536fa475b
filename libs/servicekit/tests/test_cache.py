"""Cache-aside against a real Redis.

Covers hits, jittered TTLs, negative entries, single-flight, compare-and-set stores and
after-commit invalidation.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from servicekit.db import AsyncSession, commit, rollback
from servicekit.redis import AnyRedis
from servicekit.redis.cache import Cache
from servicekit.settings import ServiceSettings

from .utils.cache import Loader, Thing, events, make_cache, wait_until

pytestmark = pytest.mark.integration


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
        self, cache: Cache[Thing], redis_client: AnyRedis, test_settings: ServiceSettings, name: str
    ) -> None:
        await cache.get_or_load(7, Loader(Thing(id=7, name="seven")))
        key = cache.key(7)
        assert key == f"{test_settings.redis.key_prefix}kit:{name}:v1:{{7}}"
        stored = await redis_client.get(key)
        assert isinstance(stored, str)
        assert Thing.model_validate_json(stored) == Thing(id=7, name="seven")

    async def test_ttls_are_jittered_within_ten_percent(
        self, redis_client: AnyRedis, test_settings: ServiceSettings, name: str
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
        self, redis_client: AnyRedis, test_settings: ServiceSettings, name: str
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
        self, redis_client: AnyRedis, test_settings: ServiceSettings, name: str
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
        self, cache: Cache[Thing], redis_client: AnyRedis, earlier_invalidations: int
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
        self, cache: Cache[Thing], redis_client: AnyRedis
    ) -> None:
        await cache.get_or_load(2, Loader(Thing(id=2, name="two")))
        assert await redis_client.exists(cache.key(2)) == 1
        await cache.invalidate([2])
        assert await redis_client.exists(cache.key(2)) == 0
        assert await redis_client.get(f"{cache.key(2)}:gen") == "1"
        assert 0 < await redis_client.ttl(f"{cache.key(2)}:gen") <= 86_400


class TestInvalidateAfterCommit:
    async def test_runs_after_commit_only(
        self, cache: Cache[Thing], redis_client: AnyRedis, db_session: AsyncSession
    ) -> None:
        await cache.get_or_load(1, Loader(Thing(id=1, name="one")))
        await db_session.execute(text("SELECT 1"))
        cache.invalidate_after_commit(db_session, [1])
        assert await redis_client.exists(cache.key(1)) == 1, "nothing happens before the commit"

        await commit(db_session)
        assert await redis_client.exists(cache.key(1)) == 0

    async def test_rollback_drops_the_invalidation(
        self, cache: Cache[Thing], redis_client: AnyRedis, db_session: AsyncSession
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
