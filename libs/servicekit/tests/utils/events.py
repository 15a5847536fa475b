"""Shared by the event tests: an event type, tables, builders and reads.

That is: the outbox and inbox tables, relay and consumer builders, and reads of what
reached the streams and the consumer's database.

The tables are named ``kit_*`` so they sit beside a service's own outbox in the run's
database (the fixtures creating them are in ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from servicekit.db import AsyncSession, commit
from servicekit.events import (
    EVENT_FIELD,
    CloudEvent,
    DomainEvent,
    EventCatalog,
    EventConsumerGroup,
    EventRecorder,
    InboxTables,
    OutboxRelay,
    OutboxTables,
    StreamPublisher,
    partition_of,
    stream_key,
)
from servicekit.settings import EventSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.redis import AnyRedis, KeySpace

METADATA = MetaData()
TABLES = OutboxTables(METADATA, name="kit_outbox")
INBOX = InboxTables(METADATA, name="kit_inbox")
#: What the tests' handler writes: one row per applied event.
EFFECTS = Table(
    "kit_effects",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("n", Integer, nullable=False),
)
SETTINGS = EventSettings(partitions=2, batch_size=3, poll_interval_s=0.05)
RECORD = EventRecorder(TABLES, source="/tests", partitions=SETTINGS.partitions)
GROUP = "kit"


class ThingHappened(DomainEvent, event_type="thing.happened", version=2):
    """The tests' event."""

    thing_id: uuid.UUID
    n: int


def make_relay(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    keys: KeySpace,
    settings: EventSettings = SETTINGS,
) -> OutboxRelay:
    """A relay of the tests' outbox to the streams of ``keys``."""
    publisher = StreamPublisher(redis, keys, maxlen=settings.stream_maxlen)
    return OutboxRelay(sessionmaker, TABLES, publisher, settings, name=keys.namespace)


async def record_things(
    sessionmaker: async_sessionmaker[AsyncSession], subject: str, count: int
) -> list[CloudEvent]:
    """Commit ``count`` events of ``subject`` (``n`` = 0, 1, …) in one transaction."""
    envelopes = []
    async with sessionmaker() as session:
        for n in range(count):
            event = ThingHappened(thing_id=uuid.uuid4(), n=n)
            envelopes.append(await RECORD(session, event, subject=subject))
        await commit(session)
    return envelopes


async def publish_things(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    keys: KeySpace,
    subject: str,
    count: int,
) -> str:
    """Commit ``count`` events and relay them; the stream they are in."""
    await record_things(sessionmaker, subject, count)
    await make_relay(sessionmaker, redis, keys).drain()
    return subject_stream(keys, subject)


def subject_stream(keys: KeySpace, subject: str) -> str:
    """The stream a subject's events go to."""
    return stream_key(keys, partition_of(subject, SETTINGS.partitions))


async def stream_events(redis: AnyRedis, keys: KeySpace, subject: str) -> list[CloudEvent]:
    """The envelopes in ``subject``'s stream, in stream order."""
    entries = await redis.xrange(subject_stream(keys, subject)) or []
    return [CloudEvent.model_validate_json(fields[EVENT_FIELD]) for _, fields in entries if fields]


def consumer_group(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    keys: KeySpace,
    *,
    fail_on: int | None = None,
    claim_idle_ms: int = 30_000,
    tracer_provider: object = None,
) -> EventConsumerGroup:
    """A group whose handler writes an ``EFFECTS`` row, and fails on event ``fail_on``."""

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
        group=GROUP,
        consumer=f"c{uuid.uuid4().hex[:6]}",
        catalog=EventCatalog(ThingHappened),
        handlers={ThingHappened.type_name(): apply},
        max_attempts=2,
        claim_idle_ms=claim_idle_ms,
        block_ms=50,
        tracer_provider=tracer_provider,
        observe_interval_s=0.0,
    )


@asynccontextmanager
async def running(group: EventConsumerGroup) -> AsyncIterator[EventConsumerGroup]:
    """The group consuming for the block's duration."""
    group.start()
    try:
        yield group
    finally:
        await group.stop()


async def applied(sessionmaker: async_sessionmaker[AsyncSession]) -> list[int]:
    """The ``n`` of every event the handler applied, sorted."""
    async with sessionmaker() as session:
        rows = await session.execute(select(EFFECTS.c.n).order_by(EFFECTS.c.n))
        return list(rows.scalars())


async def wait_for(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` until true; fail after 10 s."""
    for _ in range(200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached within 10 s")


def group_state(
    redis: AnyRedis, stream: str, *, pending: int, read: int
) -> Callable[[], Awaitable[bool]]:
    """A condition: the group has read ``read`` entries of ``stream``, ``pending`` unacked."""

    async def reached() -> bool:
        groups = await redis.xinfo_groups(stream)
        info = next((g for g in groups if g["name"] == GROUP), None)
        if info is None:
            return False
        return bool(info["pending"] == pending and (info.get("entries-read") or 0) >= read)

    return reached
