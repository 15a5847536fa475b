"""Consumers: each event handled once per consumer group, however often it is delivered.

A consumer group reads another service's partition streams (one reader per partition,
``XREADGROUP … BLOCK``). For each entry the handler runs in a transaction of the consumer's
own database that first inserts the event id into its **inbox**: a redelivered event finds
its id there and changes nothing, so the effect applies exactly once although delivery is
at least once. The entry is acknowledged after the commit. A failing handler is retried in
process with exponential backoff and jitter; after ``max_attempts`` the entry moves to the
group's dead-letter stream with the error, and later entries keep flowing. A database or
Redis that cannot be reached is not the event's fault: the entry stays pending and is
claimed again once it has been idle for ``claim_idle_ms``. An entry left
pending by a consumer that died is claimed by another after ``claim_idle_ms``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError
from redis.exceptions import ResponseError
from sqlalchemy import Column, DateTime, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite

from servicekit.db.errors import database_error
from servicekit.db.orm import utcnow
from servicekit.db.session import request_transaction
from servicekit.errors import ServiceUnavailable
from servicekit.events.envelope import CloudEvent, DomainEvent, EventCatalog
from servicekit.events.streams import EVENT_FIELD, stream_key
from servicekit.observability import metrics, tracing
from servicekit.observability.logging import get_logger
from servicekit.redis.client import REDIS_ERRORS
from servicekit.runtime.loop import BackgroundLoop

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.redis.client import AnyRedis
    from servicekit.redis.keys import KeySpace

#: A handler: the consumer's transaction, the typed payload and its envelope.
Handler = Callable[["AsyncSession", DomainEvent, CloudEvent], Awaitable[None]]
log = get_logger(__name__)


class InboxTables:
    """The inbox of event ids a consumer group has applied, on the consumer's metadata."""

    def __init__(self, metadata: MetaData, name: str = "event_inbox") -> None:
        self.events = Table(
            name,
            metadata,
            Column("consumer_group", String(100), primary_key=True),
            Column("event_id", String(36), primary_key=True),
            Column("processed_at", DateTime(timezone=True), nullable=False),
        )

    async def claim(self, session: AsyncSession, group: str, event_id: str) -> bool:
        """Record ``event_id`` for ``group``; ``False`` if it was applied before."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(self.events)
            .values(consumer_group=group, event_id=event_id, processed_at=utcnow())
            .on_conflict_do_nothing()
        )
        result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))


def dead_letter_key(keys: KeySpace, group: str) -> str:
    """The dead-letter stream of a consumer group reading ``keys``' streams."""
    return keys.key("events-dlq", group)


class PartitionConsumer(BackgroundLoop):
    """One partition stream read by one consumer of a group."""

    def __init__(self, group: EventConsumerGroup, partition: int) -> None:
        super().__init__(name=f"consumer:{group.group}:{partition}", interval_s=0.0, grace_s=5.0)
        self.group = group
        self.stream = stream_key(group.source, partition)
        self._created = False
        self._next_observation = 0.0

    async def step(self) -> None:
        """Claim stale entries, then read new ones (blocking up to ``block_ms``)."""
        group = self.group
        if not self._created:
            await group.create_group(self.stream)
            self._created = True
        claimed: Any = await group.redis.xautoclaim(
            self.stream, group.group, group.consumer, group.claim_idle_ms, count=group.batch
        )
        entries = list(claimed[1]) if claimed else []
        if not entries:
            response: Any = await group.redis.xreadgroup(
                group.group, group.consumer, {self.stream: ">"}, count=group.batch,
                block=group.block_ms,
            )  # fmt: skip
            entries = [entry for _, stream_entries in response or [] for entry in stream_entries]
        for entry_id, fields in entries:
            if fields:  # a claimed entry trimmed away meanwhile has no fields
                await group.deliver(self.stream, entry_id, fields)
        now = time.monotonic()
        if now >= self._next_observation:  # XINFO per read would double the round trips
            self._next_observation = now + group.observe_interval_s
            await group.observe(self.stream)

    def on_error(self, exc: Exception) -> None:
        """Redis or the database failed; the entry stays pending and is tried again."""
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            self._created = False  # the stream or group vanished (Redis lost its data)
        log.warning("events.consumer_failed", stream=self.stream, error=repr(exc))


class EventConsumerGroup:
    """A service's consumers of another service's events: handlers by event type."""

    def __init__(
        self,
        redis: AnyRedis,
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: InboxTables,
        *,
        source: KeySpace,
        partitions: int,
        group: str,
        consumer: str,
        catalog: EventCatalog,
        handlers: Mapping[str, Handler],
        max_attempts: int = 5,
        claim_idle_ms: int = 30_000,
        block_ms: int = 250,
        batch: int = 100,
        tracer_provider: Any = None,
        observe_interval_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.source = source
        self.group = group
        self.consumer = consumer
        self.catalog = catalog
        self.handlers = dict(handlers)
        self.max_attempts = max_attempts
        self.claim_idle_ms = claim_idle_ms
        #: How long a read waits for new entries; keep it under the client's socket timeout.
        self.block_ms = block_ms
        self.batch = batch
        #: Handling spans continue the producer's trace (``traceparent``) when given.
        self.tracer_provider = tracer_provider
        #: How often each reader reports lag, pending entries and the dead-letter size.
        self.observe_interval_s = observe_interval_s
        self.readers = [PartitionConsumer(self, p) for p in range(partitions)]

    async def create_group(self, stream: str) -> None:
        """Create the group on ``stream`` (and the stream), from its first entry."""
        try:
            await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def observe(self, stream: str) -> None:
        """Set the lag and pending gauges of ``stream`` and the dead-letter size."""
        groups: Any = await self.redis.xinfo_groups(stream)
        for info in groups or []:
            if info.get("name") == self.group:
                metrics.consumer_lag().labels(self.group, stream).set(info.get("lag") or 0)
                metrics.consumer_pending().labels(self.group, stream).set(info.get("pending", 0))
        size = await self.redis.xlen(dead_letter_key(self.source, self.group))
        metrics.dead_letters().labels(self.group).set(size)

    async def deliver(self, stream: str, entry_id: Any, fields: Mapping[Any, Any]) -> None:
        """Handle one entry with retries; acknowledge it, or dead-letter it."""
        try:
            envelope = CloudEvent.model_validate_json(fields[EVENT_FIELD])
            handler = self.handlers.get(envelope.type)
            payload = self.catalog.parse(envelope) if handler is not None else None
        except (KeyError, ValidationError) as exc:
            await self._dead_letter(stream, entry_id, fields, f"unreadable event: {exc!r}")
            return
        if handler is not None and payload is not None:
            # Every log line of the handling names the event (and its trace, when traced).
            names = {"event_id": envelope.id, "event_type": envelope.type}
            with (
                structlog.contextvars.bound_contextvars(**names),
                tracing.consumer_span(
                    self.tracer_provider, f"{envelope.type} process", envelope.traceparent, names
                ),
            ):
                error = await self._apply_with_retries(handler, payload, envelope)
            if error is not None:
                await self._dead_letter(stream, entry_id, fields, error)
                return
            metrics.events_consumed().labels(self.group, envelope.type, "handled").inc()
        await self.redis.xack(stream, self.group, entry_id)

    async def _apply_with_retries(
        self, handler: Handler, payload: DomainEvent, envelope: CloudEvent
    ) -> str | None:
        """Apply the event once (inbox); the last error's text if every attempt failed."""
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(0.05 * 2**attempt * random.uniform(0.5, 1.5))
            try:
                async with self.sessionmaker() as session, request_transaction(session):
                    if await self.inbox.claim(session, self.group, envelope.id):
                        await handler(session, payload, envelope)
            except Exception as exc:  # the handler's failure, whatever it is
                if _unavailable(exc):
                    raise  # not the event's fault: it stays pending and is claimed later
                error = repr(exc)
                metrics.events_consumed().labels(self.group, envelope.type, "failed").inc()
                log.warning("events.handler_failed", attempt=attempt, error=error)
            else:
                return None
        return error

    async def _dead_letter(
        self, stream: str, entry_id: Any, fields: Mapping[Any, Any], error: str
    ) -> None:
        """Move an entry to the group's dead-letter stream, then acknowledge it."""
        entry: dict[Any, Any] = {str(k): v for k, v in fields.items()}
        entry.update(error=error, stream=stream, entry_id=str(entry_id))
        await self.redis.xadd(dead_letter_key(self.source, self.group), entry)
        await self.redis.xack(stream, self.group, entry_id)
        metrics.events_consumed().labels(self.group, str(fields.get("type", "?")), "dead").inc()
        log.error("events.dead_lettered", stream=stream, entry_id=str(entry_id), error=error)

    def start(self) -> None:
        """Read every partition in the background."""
        for reader in self.readers:
            reader.start()

    async def stop(self) -> None:
        """Stop reading; an entry being handled finishes first (or stays pending)."""
        await asyncio.gather(*(reader.stop() for reader in self.readers))


def _unavailable(exc: Exception) -> bool:
    """Whether ``exc`` means a dependency is down (the database, Redis), not a bad event."""
    if isinstance(exc, (ServiceUnavailable, *REDIS_ERRORS)):
        return True
    return isinstance(database_error(exc), ServiceUnavailable)
