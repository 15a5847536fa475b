"""``make bench`` events step: outbox drain rate and commit-to-handler latency.

On a fresh PostgreSQL database and a Redis of its own (never the shared ones), in this one
process:

1. **drain**: 20,000 committed outbox rows, then one relay's ``drain()`` timed
   (events/s; goal >= 10,000);
2. **latency**: events recorded one per transaction at a steady 500/s for
   ``BENCH_DURATION`` seconds with the relay running (woken by each commit) and a consumer
   group handling them; the latency is handler start minus the event's time, taken right
   before its commit (p50, p99; goal p99 < 50 ms).

Writes ``results/events-latest.json`` and prints ``events_drain_per_s=… events_p99_ms=…``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, insert

from harness.backends import Database, Redis
from harness.common import POSTGRES_URL, RESULTS, WORK, out
from servicekit.db import commit, create_engine, create_sessionmaker
from servicekit.db.orm import utcnow
from servicekit.events import (
    CloudEvent,
    DomainEvent,
    EventCatalog,
    EventConsumerGroup,
    EventRecorder,
    InboxTables,
    OutboxRelay,
    OutboxTables,
    StreamPublisher,
    install_relay_wake,
    partition_of,
)
from servicekit.redis import KeySpace, create_redis
from servicekit.settings import DatabaseSettings, EventSettings, RedisSettings, ServiceSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db import AsyncSession
    from servicekit.redis import AnyRedis

DRAIN_ROWS = 20_000
RATE_PER_S = 500
DURATION_S = 10
GOALS = {"events_drain_per_s": 10_000.0, "events_p99_ms": 50.0}


METADATA = MetaData()
TABLES = OutboxTables(METADATA)
INBOX = InboxTables(METADATA)


class Ping(DomainEvent, event_type="bench.ping", version=1):
    """A benchmark event."""

    n: int


def relay_for(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    keys: KeySpace,
    settings: EventSettings,
) -> OutboxRelay:
    """The relay of the benchmark's outbox to the streams of ``keys``."""
    publisher = StreamPublisher(redis, keys, maxlen=settings.stream_maxlen)
    return OutboxRelay(sessionmaker, TABLES, publisher, settings, name=keys.namespace)


async def drain_rate(
    sessionmaker: async_sessionmaker[AsyncSession], redis: AnyRedis, settings: EventSettings
) -> float:
    """Events per second one relay publishes from a full outbox."""
    rows = []
    for n in range(DRAIN_ROWS):
        key = f"user/{n % 1000}"
        envelope = CloudEvent.wrap(Ping(n=n), source="/bench", subject=key)
        rows.append(
            {
                "event_id": envelope.id,
                "type": envelope.type,
                "partition_key": key,
                "partition": partition_of(key, settings.partitions),
                "sequence": n,
                "envelope": envelope.model_dump_json(),
                "created_at": utcnow(),
            }
        )
    async with sessionmaker() as session:
        await session.execute(insert(TABLES.events), rows)
        await commit(session)
    relay = relay_for(sessionmaker, redis, KeySpace("bench-drain"), settings)
    started = time.perf_counter()
    published = await relay.drain()
    elapsed = time.perf_counter() - started
    assert published == DRAIN_ROWS, published  # noqa: S101 - the measurement is void otherwise
    return DRAIN_ROWS / elapsed


async def latency(
    sessionmaker: async_sessionmaker[AsyncSession], redis: AnyRedis, settings: EventSettings
) -> list[float]:
    """Commit-to-handler latencies (ms) at a steady rate."""
    seen: list[float] = []
    total = RATE_PER_S * DURATION_S
    all_seen = asyncio.Event()

    async def handle(_session: AsyncSession, _event: DomainEvent, envelope: CloudEvent) -> None:
        seen.append((utcnow() - envelope.time).total_seconds() * 1000)
        if len(seen) >= total:
            all_seen.set()

    relay = relay_for(sessionmaker, redis, KeySpace("bench"), settings)
    group = EventConsumerGroup(
        redis, sessionmaker, INBOX, source=KeySpace("bench"), partitions=settings.partitions,
        group="bench", consumer="c1", catalog=EventCatalog(Ping),
        handlers={Ping.type_name(): handle},
    )  # fmt: skip
    recorder = EventRecorder(TABLES, source="/bench", partitions=settings.partitions)
    wake = install_relay_wake(relay.wake)
    relay.start()
    group.start()
    started = time.perf_counter()
    try:
        for n in range(total):
            async with sessionmaker() as session:
                wake(session)
                await recorder(session, Ping(n=n), subject=f"user/{n % 1000}")
                await commit(session)
            await asyncio.sleep(max(0.0, started + (n + 1) / RATE_PER_S - time.perf_counter()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), 10)
    finally:
        await group.stop()
        await relay.stop()
    return seen


async def run(database_url: str, redis_url: str) -> dict[str, Any]:
    """Both measurements on the given backends."""
    settings = ServiceSettings(
        database=DatabaseSettings(url=database_url), redis=RedisSettings(url=redis_url)
    )
    events = EventSettings(partitions=4, batch_size=1000, poll_interval_s=1.0)
    engine = create_engine(settings)
    redis = create_redis(settings, redis_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        sessionmaker = create_sessionmaker(engine)
        drain = await drain_rate(sessionmaker, redis, events)
        out(f"events drain: {drain:,.0f} events/s ({DRAIN_ROWS:,} rows, one relay)")
        seen = await latency(sessionmaker, redis, events)
    finally:
        await redis.aclose()
        await engine.dispose()
    quantiles = statistics.quantiles(seen, n=100) if len(seen) > 1 else [float("nan")] * 99
    result = {
        "events_drain_per_s": round(drain, 1),
        "events_handled": len(seen),
        "events_sent": RATE_PER_S * DURATION_S,
        "events_p50_ms": round(quantiles[49], 2),
        "events_p99_ms": round(quantiles[98], 2),
    }
    sent = RATE_PER_S * DURATION_S
    out(f"events latency at {RATE_PER_S}/s: p50 {result['events_p50_ms']} ms, "
        f"p99 {result['events_p99_ms']} ms ({len(seen)}/{sent} handled)")  # fmt: skip
    return result


def main() -> int:
    """Create the backends, measure, write the results."""
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    db, redis = Database(POSTGRES_URL), Redis()
    db.create()
    try:
        redis.start()
        try:
            result = asyncio.run(run(db.url, redis.url))
        finally:
            redis.stop()
    finally:
        db.drop()
    result["goals"] = {
        "events_drain_per_s": f">= {GOALS['events_drain_per_s']:,.0f}",
        "events_p99_ms": f"< {GOALS['events_p99_ms']:.0f}",
    }
    result["pass"] = (
        result["events_drain_per_s"] >= GOALS["events_drain_per_s"]
        and result["events_p99_ms"] < GOALS["events_p99_ms"]
    )
    (RESULTS / "events-latest.json").write_text(json.dumps(result, indent=2) + "\n")
    out(f"events_drain_per_s={result['events_drain_per_s']} "
        f"events_p99_ms={result['events_p99_ms']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
