"""An ``httpx.AsyncClient`` wired to an app in-process, with its lifespan running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp

from servicekit.db.session import (
    AsyncSession,
    apply_session_hooks,
    get_db_session,
    get_read_connection_source,
    request_transaction,
)


def override_db_session(app: FastAPI, session: AsyncSession) -> None:
    """Serve every request from ``session`` (bound to the test's rolled-back transaction).

    The request still commits (a SAVEPOINT, with ``join_transaction_mode="create_savepoint"``)
    and runs its after-commit callbacks, so tests see production behaviour.
    """

    async def _session(request: Request) -> AsyncIterator[AsyncSession]:
        async with request_transaction(session):
            apply_session_hooks(request, session)
            yield session

    app.dependency_overrides[get_db_session] = _session

    # Reads that open their own connection (cache misses) see the test's transaction too.
    @asynccontextmanager
    async def _connection() -> AsyncIterator[AsyncConnection]:
        yield await session.connection()

    app.dependency_overrides[get_read_connection_source] = lambda: _connection


@asynccontextmanager
async def app_client(
    app: ASGIApp, *, base_url: str = "http://localhost"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client speaking ASGI to it (no sockets)."""
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
