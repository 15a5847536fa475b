"""Slowness injected inside PostgreSQL: the test holds locks the service's statements wait on.

A statement waiting on a lock counts against ``statement_timeout`` like one that computes,
so holding a lock is a "slow database" whose delay the test controls to the millisecond.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.models import User


@asynccontextmanager
async def rows_locked(engine: AsyncEngine, user_ids: Iterable[str]) -> AsyncIterator[None]:
    """Hold ``FOR UPDATE`` locks on these users' rows while the block runs."""
    ids = [uuid.UUID(u) for u in user_ids]
    async with engine.connect() as conn, conn.begin():
        await conn.execute(select(User.id).where(User.id.in_(ids)).with_for_update())
        yield


@asynccontextmanager
async def table_locked(engine: AsyncEngine, table: str = "users") -> AsyncIterator[None]:
    """Hold an ``ACCESS EXCLUSIVE`` lock on ``table``: every statement using it waits."""
    async with engine.connect() as conn, conn.begin():
        await conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        yield


async def wait_for_lock_waiters(engine: AsyncEngine, count: int) -> None:
    """Return once ``count`` sessions of this database wait on a lock (within 10 s)."""
    deadline = time.monotonic() + 10
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() >= count:
                return
        assert time.monotonic() < deadline, f"fewer than {count} statements waiting on locks"
        await asyncio.sleep(0.05)
