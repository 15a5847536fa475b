"""One request, one transaction, committed before the response is sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive, Scope, Send

from servicekit.db import AsyncSession, commit, on_commit, rollback
from servicekit.testing import app_client

from .utils.items import Item

pytestmark = pytest.mark.integration


async def _count(engine: AsyncEngine, name: str) -> int:
    """Read through a separate pooled connection, as another request or service would."""
    async with engine.connect() as conn:
        result = await conn.execute(select(func.count()).where(Item.name == name))
        return int(result.scalar_one())


class SeenAtResponseStart:
    """ASGI wrapper that looks at the database the moment the response starts."""

    def __init__(self, app: FastAPI, engine: AsyncEngine, name: str) -> None:
        self.app, self.engine, self.name = app, engine, name
        self.rows_seen: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def spy(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["type"] == "http":
                self.rows_seen = await _count(self.engine, self.name)
            await send(message)

        await self.app(scope, receive, spy)


@pytest.fixture
async def cleanup(db_engine: AsyncEngine) -> AsyncIterator[list[str]]:
    names: list[str] = []
    yield names
    async with db_engine.begin() as conn:
        for name in names:
            await conn.execute(text("DELETE FROM kit_items WHERE name = :n"), {"n": name})


class TestSessionDependency:
    async def test_write_is_committed_before_the_response_starts(
        self, kit_app: FastAPI, db_engine: AsyncEngine, cleanup: list[str]
    ) -> None:
        name = f"item-{uuid.uuid4().hex[:8]}"
        cleanup.append(name)
        spy = SeenAtResponseStart(kit_app, db_engine, name)
        async with app_client(spy) as client:
            response = await client.post("/items", json={"name": name})
        assert response.status_code == 201
        assert spy.rows_seen == 1, "the row must be visible to others before the client sees 2xx"
        assert await _count(db_engine, name) == 1

    async def test_error_after_a_write_rolls_it_back(
        self, kit_app: FastAPI, db_engine: AsyncEngine, cleanup: list[str]
    ) -> None:
        name = f"item-{uuid.uuid4().hex[:8]}"
        cleanup.append(name)
        async with app_client(kit_app) as client:
            response = await client.post("/items", json={"name": name, "fail": True})
        assert response.status_code == 409
        assert await _count(db_engine, name) == 0

    async def test_query_count_reaches_server_timing(
        self, kit_app: FastAPI, cleanup: list[str]
    ) -> None:
        name = f"item-{uuid.uuid4().hex[:8]}"
        cleanup.append(name)
        async with app_client(kit_app) as client:
            created = await client.post("/items", json={"name": name})
            response = await client.get(f"/items/{created.json()['id']}")
        assert '"1 queries"' in response.headers["server-timing"]


class TestAfterCommit:
    async def test_callbacks_run_after_commit_only(self, db_session: AsyncSession) -> None:
        ran: list[str] = []

        async def record() -> None:
            ran.append("committed")

        on_commit(db_session, record)
        await rollback(db_session)
        assert ran == []
        on_commit(db_session, record)
        await commit(db_session)
        assert ran == ["committed"]

    async def test_failing_callback_does_not_undo_the_commit(
        self, db_session: AsyncSession
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("side effect failed")

        db_session.add(Item(name="kept"))
        on_commit(db_session, explode)
        await commit(db_session)
        count = await db_session.scalar(select(func.count()).where(Item.name == "kept"))
        assert count == 1
