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

import asyncio
import contextlib
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
from servicekit.redis.client import REDIS_ERRORS

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.events.outbox import OutboxTables
    from servicekit.events.streams import StreamPublisher
    from servicekit.settings import EventSettings

log = get_logger(__name__)
_PURGE_INTERVAL_S = 300.0
_ERROR_BACKOFF_S = 0.5


class OutboxRelay:
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
        self.sessionmaker = sessionmaker
        self.tables = tables
        self.publisher = publisher
        self.settings = settings
        #: First key of the PostgreSQL advisory locks: one lock space per service.
        self._lock_space = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_purge = 0.0

    def wake(self) -> None:
        """Publish soon: a transaction with events committed."""
        self._wake.set()

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

    async def run_once(self) -> None:
        """One cycle: drain, report the backlog, purge now and then."""
        await self.drain()
        await self.observe_backlog()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + _PURGE_INTERVAL_S
            purged = await self.purge()
            if purged:
                log.info("events.outbox_purged", rows=purged)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
            except (*REDIS_ERRORS, SQLAlchemyError, OSError) as exc:
                log.warning("events.relay_failed", error=repr(exc))
                await asyncio.sleep(_ERROR_BACKOFF_S)
            except Exception as exc:  # keep relaying whatever happened
                log.error("events.relay_error", exc_info=exc)
                await asyncio.sleep(_ERROR_BACKOFF_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_s)

    def start(self) -> None:
        """Relay in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop relaying once the batch in flight is done (cancelled after ``timeout_s``).

        Not cancelled at once: a transaction cancelled inside the driver may keep its
        connection, and on SQLite the write lock, until the process ends.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            log.warning("events.relay_stop_timeout", timeout_s=timeout_s)
