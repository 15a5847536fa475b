"""The transactional outbox: an event is a row written in the same transaction as its change.

:func:`record` inserts the envelope into ``event_outbox`` in the caller's transaction, so an
event exists exactly when its change committed; the relay publishes committed rows later.
Each partition key has a sequence row in ``event_outbox_keys``, taken with an upsert that
holds its row lock until commit: two transactions writing events of one subject serialise
there, so for one key the order of ids is the order of commits, which the relay keeps.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite

from servicekit.db.orm import UTCDateTime, utcnow
from servicekit.db.session import on_commit
from servicekit.events.envelope import CloudEvent
from servicekit.observability import tracing

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from servicekit.events.envelope import DomainEvent
    from servicekit.settings import ServiceSettings

#: ``session.info`` key of the callback that wakes the relay after a commit with events.
WAKE_KEY = "servicekit.events.wake"
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class OutboxTables:
    """The outbox's tables, declared on a service's metadata (its migrations create them)."""

    def __init__(self, metadata: MetaData, name: str = "event_outbox") -> None:
        self.events = Table(
            name,
            metadata,
            Column("id", _ID, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("type", String(200), nullable=False),
            Column("partition_key", String(200), nullable=False),
            Column("partition", Integer, nullable=False),
            Column("sequence", BigInteger, nullable=False),
            Column("envelope", Text, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
            Column("published_at", UTCDateTime, nullable=True),
            Index(f"ix_{name}_partition_id", "partition", "id"),
            Index(f"ix_{name}_published_at", "published_at"),
        )
        self.keys = Table(
            f"{name}_keys",
            metadata,
            Column("partition_key", String(200), primary_key=True),
            Column("sequence", BigInteger, nullable=False),
        )


def partition_of(partition_key: str, partitions: int) -> int:
    """The stream a partition key's events go to (stable across processes and versions)."""
    return zlib.crc32(partition_key.encode()) % partitions


async def record(
    session: AsyncSession, tables: OutboxTables, event: CloudEvent, *, partitions: int
) -> int:
    """Add ``event`` to the outbox in ``session``'s transaction; returns its key sequence.

    Nothing is published if the transaction rolls back; after a commit the relay is woken
    (when the session carries a wake callback, see :func:`install_relay_wake`).
    """
    sequence = await _next_sequence(session, tables, event.partitionkey)
    await session.execute(
        insert(tables.events).values(
            event_id=event.id,
            type=event.type,
            partition_key=event.partitionkey,
            partition=partition_of(event.partitionkey, partitions),
            sequence=sequence,
            envelope=event.model_dump_json(),
            created_at=utcnow(),
        )
    )
    wake: Callable[[], None] | None = session.info.get(WAKE_KEY)
    if wake is not None:

        async def wake_relay() -> None:
            wake()

        on_commit(session, wake_relay)
    return sequence


async def _next_sequence(session: AsyncSession, tables: OutboxTables, key: str) -> int:
    """Increment the key's sequence; the row stays locked until the transaction ends."""
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(tables.keys)
        .values(partition_key=key, sequence=1)
        .on_conflict_do_update(
            index_elements=[tables.keys.c.partition_key],
            set_={"sequence": tables.keys.c.sequence + 1},
        )
        .returning(tables.keys.c.sequence)
    )
    return int((await session.execute(statement)).scalar_one())


class EventRecorder:
    """Records a service's domain events in its outbox: the collaborator services take."""

    def __init__(self, tables: OutboxTables, *, source: str, partitions: int) -> None:
        self.tables = tables
        self.source = source
        self.partitions = partitions

    @classmethod
    def of(cls, settings: ServiceSettings, tables: OutboxTables) -> EventRecorder:
        """The recorder of ``settings``' service: source ``/<service name>``."""
        return cls(
            tables, source=f"/{settings.service_name}", partitions=settings.events.partitions
        )

    async def __call__(
        self,
        session: AsyncSession,
        event: DomainEvent,
        *,
        subject: str,
        partition_key: str | None = None,
    ) -> CloudEvent:
        """Wrap ``event`` in its envelope and add it to the outbox in the transaction."""
        envelope = CloudEvent.wrap(
            event,
            source=self.source,
            subject=subject,
            partition_key=partition_key,
            traceparent=tracing.current_traceparent(),  # consumers continue this trace
        )
        await record(session, self.tables, envelope, partitions=self.partitions)
        return envelope


def install_relay_wake(wake: Callable[[], None]) -> Callable[[AsyncSession], None]:
    """A session hook (``AppState.session_hooks``) that wakes the relay after commits."""

    def hook(session: AsyncSession) -> None:
        session.info[WAKE_KEY] = wake

    return hook
