"""The transactional outbox and its relay, on the run's real database and Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
import structlog
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from servicekit.db import AsyncSession, commit, create_engine, create_sessionmaker
from servicekit.db.orm import utcnow
from servicekit.events import (
    EVENT_FIELD,
    CloudEvent,
    DeadLetters,
    DomainEvent,
    EventCatalog,
    EventConsumerGroup,
    EventRecorder,
    InboxTables,
    OutboxRelay,
    OutboxTables,
    StreamPublisher,
    dead_letter_key,
    install_relay_wake,
    partition_of,
    stream_key,
)
from servicekit.redis import AnyRedis, EmbeddedRedis, KeySpace
from servicekit.settings import EventSettings, ServiceSettings

pytestmark = pytest.mark.integration

METADATA = MetaData()
TABLES = OutboxTables(METADATA, name="kit_outbox")  # beside a service's own outbox


class ThingHappened(DomainEvent, event_type="thing.happened", version=2):
    thing_id: uuid.UUID
    n: int


@pytest.fixture(scope="module")
async def outbox_tables(db_engine: AsyncEngine) -> AsyncIterator[None]:
    async with db_engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield
    async with db_engine.begin() as conn:
        await conn.run_sync(METADATA.drop_all)


@pytest.fixture
async def sessionmaker(
    db_engine: AsyncEngine, outbox_tables: None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that really commit (the relay reads committed rows in its own transactions)."""
    yield create_sessionmaker(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(TABLES.events.delete())
        await conn.execute(TABLES.keys.delete())


@pytest.fixture
def keys(test_settings: ServiceSettings) -> KeySpace:
    return KeySpace(f"events{uuid.uuid4().hex[:8]}", test_settings.redis.key_prefix)


SETTINGS = EventSettings(partitions=2, batch_size=3, poll_interval_s=0.05)


def make_relay(
    sessionmaker: async_sessionmaker[AsyncSession], redis: AnyRedis, keys: KeySpace
) -> OutboxRelay:
    publisher = StreamPublisher(redis, keys, maxlen=SETTINGS.stream_maxlen)
    return OutboxRelay(sessionmaker, TABLES, publisher, SETTINGS, name=keys.namespace)


RECORD = EventRecorder(TABLES, source="/tests", partitions=SETTINGS.partitions)


async def record_things(
    sessionmaker: async_sessionmaker[AsyncSession], subject: str, count: int
) -> list[CloudEvent]:
    envelopes = []
    async with sessionmaker() as session:
        for n in range(count):
            event = ThingHappened(thing_id=uuid.uuid4(), n=n)
            envelopes.append(await RECORD(session, event, subject=subject))
        await commit(session)
    return envelopes


async def stream_events(redis: AnyRedis, keys: KeySpace, subject: str) -> list[CloudEvent]:
    partition = partition_of(subject, SETTINGS.partitions)
    entries = await redis.xrange(stream_key(keys, partition)) or []
    return [CloudEvent.model_validate_json(fields[EVENT_FIELD]) for _, fields in entries if fields]


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
        publisher = StreamPublisher(redis_client, keys, maxlen=slow.stream_maxlen)
        relay = OutboxRelay(sessionmaker, TABLES, publisher, slow, name=keys.namespace)
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


def test_partitions_are_stable() -> None:
    """The stream of a key never depends on the process (no salted ``hash()``)."""
    assert partition_of("user/1", 4) == partition_of("user/1", 4)
    assert {partition_of(f"user/{n}", 4) for n in range(100)} == {0, 1, 2, 3}
    envelope = CloudEvent.wrap(ThingHappened(thing_id=uuid.uuid4(), n=0), source="/s", subject="x")
    assert json.loads(envelope.model_dump_json())["datacontenttype"] == "application/json"


INBOX = InboxTables(METADATA, name="kit_inbox")
EFFECTS = Table(
    "kit_effects",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("n", Integer, nullable=False),
)


class TestConsumer:
    @pytest.fixture
    async def effects(
        self, sessionmaker: async_sessionmaker[AsyncSession], db_engine: AsyncEngine
    ) -> AsyncIterator[None]:
        yield
        async with db_engine.begin() as conn:
            await conn.execute(EFFECTS.delete())
            await conn.execute(INBOX.events.delete())

    def group(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: AnyRedis,
        keys: KeySpace,
        *,
        fail_on: int | None = None,
        claim_idle_ms: int = 30_000,
    ) -> EventConsumerGroup:
        async def apply(session: AsyncSession, event: DomainEvent, envelope: CloudEvent) -> None:
            assert isinstance(event, ThingHappened)
            bound = structlog.contextvars.get_contextvars()  # what every log line carries
            assert bound["event_id"] == envelope.id
            assert bound["event_type"] == envelope.type
            if event.n == fail_on:
                raise RuntimeError("poison")
            await session.execute(insert(EFFECTS).values(event_id=envelope.id, n=event.n))

        return EventConsumerGroup(
            redis,
            sessionmaker,
            INBOX,
            source=keys,
            partitions=SETTINGS.partitions,
            group="kit",
            consumer=f"c{uuid.uuid4().hex[:6]}",
            catalog=EventCatalog(ThingHappened),
            handlers={ThingHappened.type_name(): apply},
            max_attempts=2,
            claim_idle_ms=claim_idle_ms,
            block_ms=50,
        )

    async def applied(self, sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
        async with sessionmaker() as session:
            rows = await session.execute(select(EFFECTS.c.n).order_by(EFFECTS.c.n))
            return list(rows.scalars())

    async def wait_for(self, condition: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(200):  # bounded: 10 s
            if await condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not reached within 10 s")

    async def test_a_redelivered_event_is_applied_once(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
        effects: None,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/i", 3)
        await relay.drain()
        async with sessionmaker() as session:  # a relay that died before marking: again
            await session.execute(update(TABLES.events).values(published_at=None))
            await commit(session)
        await relay.drain()
        assert len(await stream_events(redis_client, keys, "thing/i")) == 6
        group = self.group(sessionmaker, redis_client, keys)
        group.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/i", 0, 6))
        finally:
            await group.stop()
        assert await self.applied(sessionmaker) == [0, 1, 2]

    async def test_a_poison_event_is_dead_lettered_and_the_others_flow(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
        effects: None,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/j", 3)
        await relay.drain()
        stream = stream_key(keys, partition_of("thing/j", SETTINGS.partitions))
        bad = CloudEvent.wrap(ThingHappened(thing_id=uuid.uuid4(), n=9), source="/t", subject="j")
        unreadable = bad.model_copy(update={"data": {"n": "nine"}})
        await redis_client.xadd(
            stream, {"type": bad.type, EVENT_FIELD: unreadable.model_dump_json()}
        )
        group = self.group(sessionmaker, redis_client, keys, fail_on=1)
        group.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/j", 0, 4))
        finally:
            await group.stop()
        assert await self.applied(sessionmaker) == [0, 2]
        dead = await redis_client.xrange(dead_letter_key(keys, "kit")) or []
        errors = [fields["error"] for _, fields in dead if fields]
        assert len(errors) == 2
        assert "poison" in errors[0]
        assert "unreadable event" in errors[1]

    async def test_an_entry_left_by_a_dead_consumer_is_claimed_and_applied_once(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
        effects: None,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/k", 2)
        await relay.drain()
        stream = stream_key(keys, partition_of("thing/k", SETTINGS.partitions))
        survivor = self.group(sessionmaker, redis_client, keys, claim_idle_ms=200)
        await survivor.create_group(stream)
        # A consumer read both entries and died before acknowledging them.
        taken = await redis_client.xreadgroup("kit", "dead", {stream: ">"}, count=10)
        assert taken
        survivor.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/k", 0, 2))
        finally:
            await survivor.stop()
        assert await self.applied(sessionmaker) == [0, 1]

    async def test_a_replayed_dead_letter_is_handled_and_a_dropped_one_is_gone(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
        effects: None,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/l", 3)
        await relay.drain()
        failing = self.group(sessionmaker, redis_client, keys, fail_on=1)
        failing.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/l", 0, 3))
        finally:
            await failing.stop()
        dead = DeadLetters(redis_client, keys, "kit")
        (entry_id, fields), *_ = await dead.list()
        assert "poison" in fields["error"]
        assert await dead.replay(entry_id)
        assert await dead.list() == []
        fixed = self.group(sessionmaker, redis_client, keys)  # the handler was fixed
        fixed.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/l", 0, 4))
            await self.wait_for(lambda: self.count_applied(sessionmaker, 3))
        finally:
            await fixed.stop()
        assert await self.applied(sessionmaker) == [0, 1, 2]
        assert not await dead.replay(entry_id)  # gone
        await redis_client.xadd(dead.key, {"type": "x", EVENT_FIELD: "{}", "error": "e"})
        (other, _), *_ = await dead.list()
        assert await dead.drop(other)
        assert await dead.show(other) is None

    async def test_a_database_outage_leaves_the_event_pending_not_dead(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis_client: AnyRedis,
        keys: KeySpace,
        test_settings: ServiceSettings,
        effects: None,
    ) -> None:
        relay = make_relay(sessionmaker, redis_client, keys)
        await record_things(sessionmaker, "thing/m", 1)
        await relay.drain()
        dead_engine = create_engine(test_settings, "postgresql+asyncpg://postgres@127.0.0.1:1/x")
        cut_off = self.group(create_sessionmaker(dead_engine), redis_client, keys)
        cut_off.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/m", 1, 1))
            await asyncio.sleep(0.3)  # several attempts and back-offs
        finally:
            await cut_off.stop()
            await dead_engine.dispose()
        assert await DeadLetters(redis_client, keys, "kit").list() == []
        recovered = self.group(sessionmaker, redis_client, keys, claim_idle_ms=100)
        recovered.start()
        try:
            await self.wait_for(lambda: self.pending_is(redis_client, keys, "thing/m", 0, 1))
        finally:
            await recovered.stop()
        assert await self.applied(sessionmaker) == [0]

    async def count_applied(
        self, sessionmaker: async_sessionmaker[AsyncSession], count: int
    ) -> bool:
        return len(await self.applied(sessionmaker)) == count

    async def pending_is(
        self, redis: AnyRedis, keys: KeySpace, subject: str, pending: int, read: int
    ) -> bool:
        """Whether the group has read ``read`` entries and ``pending`` are unacknowledged."""
        stream = stream_key(keys, partition_of(subject, SETTINGS.partitions))
        groups = await redis.xinfo_groups(stream)
        info = next((g for g in groups if g["name"] == "kit"), None)
        if info is None:
            return False
        return bool(info["pending"] == pending and info.get("entries-read", read) >= read)
