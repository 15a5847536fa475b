"""Revocations reach every instance's mirror within a second, even if a message is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.exceptions import RedisError

from servicekit.auth import SessionDenylist
from servicekit.redis import REDIS_ERRORS, AnyRedis, create_redis
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.redis.keys import KeySpace
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def pair(
    redis_client: AnyRedis, test_settings: ServiceSettings
) -> AsyncIterator[tuple[SessionDenylist, SessionDenylist]]:
    namespace = f"mirror-{uuid.uuid4().hex[:6]}"
    lists = [
        SessionDenylist(redis_client, keys=KeySpace(namespace, test_settings.redis.key_prefix))
        for _ in range(2)
    ]
    await lists[0].mark_complete()
    for denylist in lists:
        await denylist.start()
    await _until(lambda: all(d.feed.fresh for d in lists))
    yield lists[0], lists[1]
    for denylist in lists:
        await denylist.stop()


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not condition():  # noqa: ASYNC110 - state set by background tasks
            await asyncio.sleep(0.01)


async def _seen_by(denylist: SessionDenylist, session_id: uuid.UUID) -> float:
    started = time.monotonic()
    while not await denylist.is_revoked(session_id):
        assert time.monotonic() - started < 2.0
        await asyncio.sleep(0.01)
    return time.monotonic() - started


class TestMirror:
    async def test_a_revocation_on_one_instance_reaches_the_other(
        self, pair: tuple[SessionDenylist, SessionDenylist]
    ) -> None:
        a, b = pair
        session_id = uuid.uuid4()
        assert not await b.is_revoked(session_id)
        await a.revoke([(session_id, 60)])
        assert await a.is_revoked(session_id)  # the revoking instance knows at once
        assert await _seen_by(b, session_id) < 1.0
        assert b.feed.fresh  # answered from the mirror, not a round trip

    async def test_a_lost_message_is_caught_by_the_generation_poll(
        self, pair: tuple[SessionDenylist, SessionDenylist], redis_client: AnyRedis
    ) -> None:
        _, b = pair
        session_id = uuid.uuid4()
        # A writer whose PUBLISH never arrives: index and counter change, no message.
        expires_ms = (time.time() + 60) * 1000
        await redis_client.zadd(b.index_key, {str(session_id): expires_ms})
        await redis_client.set(b.key(session_id), "1", ex=60)
        await redis_client.incr(b.feed.generation_key)
        assert await _seen_by(b, session_id) < 1.0

    async def test_an_unreachable_redis_makes_the_mirror_stale(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        dead = create_redis(test_settings, "redis://127.0.0.1:1/0")  # nothing listens there
        calls: list[uuid.UUID] = []

        async def fallback(session_id: uuid.UUID) -> bool:
            calls.append(session_id)
            return True

        denylist = SessionDenylist(
            dead, keys=KeySpace("dead"), fallback=fallback, max_staleness_s=0.2
        )
        await denylist.start()
        try:
            session_id = uuid.uuid4()
            assert await denylist.is_revoked(session_id)  # from the fallback
            assert calls == [session_id]
            assert not denylist.feed.fresh
        finally:
            await denylist.stop()
            await dead.aclose()

    async def test_fallback_answers_are_shared_briefly_and_a_revocation_here_is_seen_at_once(
        self, test_settings: ServiceSettings
    ) -> None:
        dead = create_redis(test_settings, "redis://127.0.0.1:1/0")  # nothing listens there
        revoked: set[uuid.UUID] = set()
        calls: list[uuid.UUID] = []

        async def fallback(session_id: uuid.UUID) -> bool:
            calls.append(session_id)
            await asyncio.sleep(0.01)  # a database round trip
            return session_id in revoked

        denylist = SessionDenylist(dead, keys=KeySpace("dead"), fallback=fallback)
        try:
            session_id = uuid.uuid4()
            answers = await asyncio.gather(*(denylist.is_revoked(session_id) for _ in range(10)))
            assert answers == [False] * 10
            assert calls == [session_id]  # one query for ten checks
            # Revoked elsewhere (the database says so): honoured once the memo's half
            # second is over, inside the mirror's own one-second bound.
            revoked.add(session_id)
            assert await _seen_by(denylist, session_id) < 1.0
            # Revoked here: at once, even with Redis unable to take the write.
            other = uuid.uuid4()
            assert not await denylist.is_revoked(other)
            with pytest.raises(REDIS_ERRORS):  # a cluster client's error is no RedisError
                await denylist.revoke([(other, 60)])
            assert await denylist.is_revoked(other)
        finally:
            await dead.aclose()

    async def test_a_message_arriving_during_a_reload_is_not_lost(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        denylist = SessionDenylist(
            redis_client, keys=KeySpace("reload-race", test_settings.redis.key_prefix)
        )
        await denylist.mark_complete()
        session_id = uuid.uuid4()
        expires = time.time() + 60
        # Delivered while the reload awaits Redis: the index it reads predates the message.
        asyncio.get_running_loop().call_soon(denylist._apply, f"{session_id}@{expires}")
        await denylist._reload()
        assert denylist._mirror.get(str(session_id)) == pytest.approx(expires)

    async def test_a_revocation_redis_missed_survives_its_return_with_old_data(
        self, own_redis: EmbeddedRedis, test_settings: ServiceSettings
    ) -> None:
        # Redis comes back with its data (persistence, a partition): the list looks complete
        # but lacks what was revoked meanwhile; until the issuer rebuilds it, this instance
        # must still refuse the session it revoked itself.
        redis = create_redis(test_settings, own_redis.url)
        denylist = SessionDenylist(redis, keys=KeySpace("kept"), max_staleness_s=0.3)
        try:
            await denylist.mark_complete()
            await denylist.start()
            await _until(lambda: denylist.feed.fresh)
            await redis.save()
            own_redis.stop()
            # A failed poll: the feed resynchronises (reloads the mirror) once Redis is back.
            await _until(lambda: denylist.feed._generation is None)
            session_id = uuid.uuid4()
            with pytest.raises(RedisError):
                await denylist.revoke([(session_id, 60)])
            own_redis.start()
            assert not denylist.feed.fresh  # asked of Redis, whose list looks complete
            assert await denylist.is_revoked(session_id)
            await _until(lambda: denylist.feed.fresh)  # after the reload
            assert await denylist.is_complete()
            assert await denylist.is_revoked(session_id)
        finally:
            await denylist.stop()
            await redis.aclose()
