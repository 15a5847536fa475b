"""Consumer groups: effects applied once, dead letters, claims, outages."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.db import AsyncSession, commit, create_engine, create_sessionmaker
from servicekit.events import EVENT_FIELD, CloudEvent, DeadLetters
from servicekit.redis import AnyRedis, KeySpace
from servicekit.settings import ServiceSettings

from .utils.events import (
    GROUP,
    TABLES,
    ThingHappened,
    applied,
    consumer_group,
    group_state,
    make_relay,
    publish_things,
    running,
    wait_for,
)

pytestmark = pytest.mark.integration


async def test_a_redelivered_event_is_applied_once(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/i", 3)
    async with sessionmaker() as session:  # a relay that died before marking: again
        await session.execute(update(TABLES.events).values(published_at=None))
        await commit(session)
    await make_relay(sessionmaker, redis_client, keys).drain()
    assert await redis_client.xlen(stream) == 6
    async with running(consumer_group(sessionmaker, redis_client, keys)):
        await wait_for(group_state(redis_client, stream, pending=0, read=6))
    assert await applied(sessionmaker) == [0, 1, 2]


async def test_a_poison_event_is_dead_lettered_and_the_others_flow(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/j", 3)
    bad = CloudEvent.wrap(ThingHappened(thing_id=uuid.uuid4(), n=9), source="/t", subject="j")
    unreadable = bad.model_copy(update={"data": {"n": "nine"}})
    await redis_client.xadd(stream, {"type": bad.type, EVENT_FIELD: unreadable.model_dump_json()})
    async with running(consumer_group(sessionmaker, redis_client, keys, fail_on=1)):
        await wait_for(group_state(redis_client, stream, pending=0, read=4))
    assert await applied(sessionmaker) == [0, 2]
    errors = [fields["error"] for _, fields in await DeadLetters(redis_client, keys, GROUP).list()]
    assert len(errors) == 2
    assert "poison" in errors[0]
    assert "unreadable event" in errors[1]


async def test_an_entry_left_by_a_dead_consumer_is_claimed_and_applied_once(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/k", 2)
    survivor = consumer_group(sessionmaker, redis_client, keys, claim_idle_ms=200)
    await survivor.create_group(stream)
    # A consumer read both entries and died before acknowledging them.
    assert await redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    async with running(survivor):
        await wait_for(group_state(redis_client, stream, pending=0, read=2))
    assert await applied(sessionmaker) == [0, 1]


async def test_a_replayed_dead_letter_is_handled_and_a_dropped_one_is_gone(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/l", 3)
    async with running(consumer_group(sessionmaker, redis_client, keys, fail_on=1)):
        await wait_for(group_state(redis_client, stream, pending=0, read=3))
    dead = DeadLetters(redis_client, keys, GROUP)
    (entry_id, fields), *_ = await dead.list()
    assert "poison" in fields["error"]
    assert await dead.replay(entry_id)
    assert await dead.list() == []
    async with running(consumer_group(sessionmaker, redis_client, keys)):  # handler fixed
        await wait_for(group_state(redis_client, stream, pending=0, read=4))
    assert await applied(sessionmaker) == [0, 1, 2]
    assert not await dead.replay(entry_id)  # gone
    await redis_client.xadd(dead.key, {"type": "x", EVENT_FIELD: "{}", "error": "e"})
    (other, _), *_ = await dead.list()
    assert await dead.drop(other)
    assert await dead.show(other) is None


async def test_a_database_outage_leaves_the_event_pending_not_dead(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_client: AnyRedis,
    keys: KeySpace,
    test_settings: ServiceSettings,
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/m", 1)
    dead_engine = create_engine(test_settings, "postgresql+asyncpg://postgres@127.0.0.1:1/x")
    try:
        async with running(consumer_group(create_sessionmaker(dead_engine), redis_client, keys)):
            await wait_for(group_state(redis_client, stream, pending=1, read=1))
            await asyncio.sleep(0.3)  # several attempts and back-offs
    finally:
        await dead_engine.dispose()
    assert await DeadLetters(redis_client, keys, GROUP).list() == []
    async with running(consumer_group(sessionmaker, redis_client, keys, claim_idle_ms=100)):
        await wait_for(group_state(redis_client, stream, pending=0, read=1))
    assert await applied(sessionmaker) == [0]
