"""The outbox and its relay on the run's real database and Redis; the envelope."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.db import AsyncSession, commit
from servicekit.db.orm import utcnow
from servicekit.events import CloudEvent, EventCatalog, install_relay_wake, partition_of
from servicekit.redis import AnyRedis, EmbeddedRedis, KeySpace

from .utils.events import (
    RECORD,
    SETTINGS,
    TABLES,
    ThingHappened,
    make_relay,
    record_things,
    stream_events,
)

pytestmark = pytest.mark.integration


class TestEnvelope:
    def test_type_is_versioned_and_the_payload_validated(self) -> None:
        event = ThingHappened(thing_id=uuid.uuid4(), n=1)
        envelope = CloudEvent.wrap(event, source="/tests", subject="thing/1")
        assert envelope.type == "thing.happened.v2"
        assert envelope.partitionkey == "thing/1"
        assert envelope.specversion == "1.0"
        assert EventCatalog(ThingHappened).parse(envelope) == event
        wrong = envelope.model_copy(update={"data": {"thing_id": "not a uuid", "n": 1}})
        with pytest.raises(ValidationError):
            EventCatalog(ThingHappened).parse(wrong)

    def test_catalog_refuses_a_type_declared_twice_and_renders_schemas(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            EventCatalog(ThingHappened, ThingHappened)
        schemas = EventCatalog(ThingHappened).json_schemas()
        assert set(schemas["thing.happened.v2"]["properties"]) == {"thing_id", "n"}


class TestOutbox:
    async def test_a_committed_transaction_leaves_its_events(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        envelopes = await record_things(sessionmaker, "thing/a", 3)
        async with sessionmaker() as session:
            rows = (await session.execute(select(TABLES.events).order_by(TABLES.events.c.id))).all()
        assert [row.event_id for row in rows] == [e.id for e in envelopes]
        assert [row.sequence for row in rows] == [1, 2, 3]
        assert {row.partition for row in rows} == {partition_of("thing/a", SETTINGS.partitions)}
        assert all(row.published_at is None for row in rows)

    async def test_a_rolled_back_transaction_leaves_nothing(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with sessionmaker() as session:
            await RECORD(session, ThingHappened(thing_id=uuid.uuid4(), n=0), subject="thing/b")
            await session.rollback()
        async with sessionmaker() as session:
            count = (
                await session.execute(select(func.count()).select_from(TABLES.events))
            ).scalar()
        assert count == 0


class TestRelay:
    async def test_drain_publishes_in_order_once(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        envelopes = await record_things(sessionmaker, "thing/c", 7)  # three batches of 3
        assert await relay.drain() == 7
        assert await relay.drain() == 0
        published = await stream_events(redis_client, keys, "thing/c")
        assert [e.id for e in published] == [e.id for e in envelopes]
        assert [e.data["n"] for e in published] == list(range(7))

    async def test_a_relay_killed_before_marking_publishes_again(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
    ) -> None:
        """At least once: the append happened, the mark did not commit; nothing is lost."""
        relay = make_relay(sessionmaker, redis_client, keys)
        (envelope,) = await record_things(sessionmaker, "thing/d", 1)
        assert await relay.drain() == 1
        async with sessionmaker() as session:  # as if the marking transaction never committed
            await session.execute(update(TABLES.events).values(published_at=None))
            await commit(session)
        assert await relay.drain() == 1
        published = await stream_events(redis_client, keys, "thing/d")
        assert [e.id for e in published] == [envelope.id, envelope.id]

    async def test_redis_down_keeps_the_rows_until_it_returns(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        own_redis_client: AnyRedis,
        own_redis: EmbeddedRedis,
        keys: KeySpace,
    ) -> None:
        relay = make_relay(sessionmaker, own_redis_client, keys)
        envelopes = await record_things(sessionmaker, "thing/e", 2)
        own_redis.stop()
        with pytest.raises(Exception, match=r"(?i)connect|closed|refused|no such file"):
            await relay.drain()
        own_redis.start()
        for _ in range(50):  # bounded: the client reconnects on its next command
            try:
                assert await relay.drain() == 2
                break
            except Exception:
                await asyncio.sleep(0.1)
        published = await stream_events(own_redis_client, keys, "thing/e")
        assert [e.id for e in published] == [e.id for e in envelopes]

    async def test_eight_concurrent_writers_on_one_key_are_published_in_commit_order(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
    ) -> None:
        async def writer(n: int) -> None:
            async with sessionmaker() as session:
                await RECORD(session, ThingHappened(thing_id=uuid.uuid4(), n=n), subject="thing/f")
                await asyncio.sleep(0.01 * (8 - n))  # later starters commit first if unordered
                await commit(session)

        await asyncio.gather(*(writer(n) for n in range(8)))
        relay = make_relay(sessionmaker, redis_client, keys)
        await relay.drain()
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    select(TABLES.events.c.event_id, TABLES.events.c.sequence).order_by(
                        TABLES.events.c.sequence
                    )
                )
            ).all()
        published = await stream_events(redis_client, keys, "thing/f")
        assert [e.id for e in published] == [row.event_id for row in rows]
        assert [row.sequence for row in rows] == list(range(1, 9))

    async def test_a_commit_wakes_the_running_relay(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
    ) -> None:
        slow = SETTINGS.model_copy(update={"poll_interval_s": 30.0})
        relay = make_relay(sessionmaker, redis_client, keys, slow)
        relay.start()
        try:
            await asyncio.sleep(0.1)  # its first cycle found nothing; now it waits 30 s
            async with sessionmaker() as session:
                install_relay_wake(relay.wake)(session)
                await RECORD(session, ThingHappened(thing_id=uuid.uuid4(), n=1), subject="thing/g")
                await commit(session)
            for _ in range(100):
                if await stream_events(redis_client, keys, "thing/g"):
                    break
                await asyncio.sleep(0.02)
            assert len(await stream_events(redis_client, keys, "thing/g")) == 1
        finally:
            await relay.stop()

    async def test_purge_deletes_published_rows_past_retention(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/h", 2)
        await relay.drain()
        await record_things(sessionmaker, "thing/h", 1)  # unpublished: kept whatever its age
        async with sessionmaker() as session:
            await session.execute(
                update(TABLES.events).values(created_at=utcnow() - timedelta(days=3))
            )
            await session.execute(
                update(TABLES.events)
                .where(TABLES.events.c.published_at.is_not(None))
                .values(published_at=utcnow() - timedelta(days=2))
            )
            await commit(session)
        assert await relay.purge() == 2
        async with sessionmaker() as session:
            left = (await session.execute(select(TABLES.events.c.sequence))).scalars().all()
        assert left == [3]


def test_partitions_are_stable_and_spread() -> None:
    """A key's stream is a function of the key alone: CRC-32, never a salted ``hash()``.

    The values below hold in every process and release, or subjects would change streams.
    """
    assert (partition_of("user/1", 4), partition_of("user/2", 4)) == (2, 0)
    assert {partition_of(f"user/{n}", 4) for n in range(100)} == {0, 1, 2, 3}
