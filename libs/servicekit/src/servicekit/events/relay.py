"""The outbox relay: publishes committed outbox rows to the partition streams, in order.

Woken right after a commit that recorded events (see ``outbox.install_relay_wake``), and by
a poll every ``events.poll_interval_s`` otherwise (a commit in another process, a publish
that failed). Each partition is drained in id order, which for one partition key is commit
order. Several relays may run: on PostgreSQL a relay takes a transaction-scoped advisory
lock per partition and skips partitions another relay holds; on SQLite every transaction
takes the write lock, so relays take turns. A row is marked published in the transaction
that read it, after its stream append: a relay killed in between publishes the row again
(at least once; consumers drop an event id they have seen).
"""

from __future__ import annotations

import time
import zlib
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from servicekit.db.orm import utcnow
from servicekit.db.session import read_only_session
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings
from servicekit.redis.client import REDIS_ERRORS
from servicekit.runtime.loop import BackgroundLoop

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.events.outbox import OutboxTables
    from servicekit.events.streams import StreamPublisher
    from servicekit.settings import EventSettings

log = get_logger(__name__)
outage_log = ThrottledWarnings(log)
_PURGE_INTERVAL_S = 300.0


class OutboxRelay(BackgroundLoop):
    """Moves outbox rows of one service to its streams; start it, wake it, stop it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: OutboxTables,
        publisher: StreamPublisher,
        settings: EventSettings,
        *,
        name: str,
    ) -> None:
        super().__init__(name="outbox-relay", interval_s=settings.poll_interval_s, grace_s=5.0)
        self.sessionmaker = sessionmaker
        self.tables = tables
        self.publisher = publisher
        self.settings = settings
        #: First key of the PostgreSQL advisory locks: one lock space per service.
        self._lock_space = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self._next_purge = 0.0
        self._next_observation = 0.0

    async def drain(self) -> int:
        """Publish every committed row now (all partitions); returns how many were."""
        total = 0
        for partition in range(self.settings.partitions):
            while True:
                published = await self.drain_partition(partition)
                total += published
                if published < self.settings.batch_size:
                    break
        return total

    async def drain_partition(self, partition: int) -> int:
        """Publish one batch of ``partition``'s oldest rows.

        Returns 0 if there are none or another relay holds the partition.
        """
        events = self.tables.events
        if not await self._any((events.c.partition == partition) & events.c.published_at.is_(None)):
            return 0  # checked without a write lock: on SQLite idle polls never queue writers
        async with self.sessionmaker() as session, session.begin():
            if not await self._lock(session, partition):
                return 0
            rows = (
                await session.execute(
                    select(events.c.id, events.c.type, events.c.envelope)
                    .where(events.c.partition == partition, events.c.published_at.is_(None))
                    .order_by(events.c.id)
                    .limit(self.settings.batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self.publisher.publish(partition, [(row.type, row.envelope) for row in rows])
            await session.execute(
                update(events)
                .where(events.c.id.in_([row.id for row in rows]))
                .values(published_at=utcnow())
            )
        for row in rows:
            metrics.events_published().labels(row.type).inc()
        return len(rows)

    async def _any(self, condition: ColumnElement[bool]) -> bool:
        """Whether an outbox row matches ``condition`` (a read-only look)."""
        events = self.tables.events
        async with read_only_session(self.sessionmaker) as session:
            found = await session.execute(select(events.c.id).where(condition).limit(1))
            return found.first() is not None

    async def _lock(self, session: AsyncSession, partition: int) -> bool:
        if session.get_bind().dialect.name != "postgresql":
            return True  # SQLite: BEGIN IMMEDIATE already made this transaction the only writer
        locked = await session.execute(
            select(func.pg_try_advisory_xact_lock(self._lock_space, partition))
        )
        return bool(locked.scalar_one())

    async def purge(self) -> int:
        """Delete rows published longer ago than the retention period."""
        cutoff = utcnow() - timedelta(hours=self.settings.retention_hours)
        events = self.tables.events
        if not await self._any(events.c.published_at < cutoff):
            return 0
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(delete(events).where(events.c.published_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def observe_backlog(self) -> None:
        """Set the backlog gauges: unpublished rows and the age of the oldest."""
        events = self.tables.events
        async with read_only_session(self.sessionmaker) as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(events.c.created_at)).where(
                        events.c.published_at.is_(None)
                    )
                )
            ).one()
        metrics.outbox_backlog().set(count)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        metrics.outbox_oldest_age().set(max(age, 0.0))

    async def step(self) -> None:
        """One cycle: drain; now and then, report the backlog and purge."""
        await self.drain()
        now = time.monotonic()
        if now >= self._next_observation:  # a count per cycle would tax busy relays
            self._next_observation = now + self.settings.poll_interval_s
            await self.observe_backlog()
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL_S
            purged = await self.purge()
            if purged:
                log.info("events.outbox_purged", rows=purged)

    def on_error(self, exc: Exception) -> None:
        """Rows stay in the outbox; the next cycle publishes them."""
        if isinstance(exc, (*REDIS_ERRORS, SQLAlchemyError, OSError)):
            outage_log.warning("events.relay_failed", error=repr(exc))
        else:
            log.error("events.relay_error", exc_info=exc)
