"""PostgreSQL unreachable or slow: 503 problem+json with Retry-After, never a 500 or a hang.

The service reaches PostgreSQL through a :class:`TcpProxy` the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.app import create_app
from servicekit.db import create_engine, database_error
from servicekit.errors import (
    DatabaseTimeout,
    DatabaseUnavailable,
    TransactionConflict,
    UnstorableText,
)
from servicekit.observability import metrics
from servicekit.settings import ServiceSettings
from servicekit.testing import app_client
from servicekit.testing.tcp_proxy import TcpProxy

from .utils.items import items_router

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
def proxied_settings(
    test_settings: ServiceSettings, database_url: str, database_proxy: TcpProxy
) -> ServiceSettings:
    database = test_settings.database.model_copy(
        update={"url": database_proxy.url_for(database_url), "statement_timeout_ms": 300}
    )
    return test_settings.model_copy(update={"database": database})


@pytest.fixture
async def client(
    proxied_settings: ServiceSettings, kit_tables: None
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(proxied_settings, [items_router()])
    async with app_client(app) as client:
        yield client


def assert_problem(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"] == code
    assert body["request_id"] == response.headers["x-request-id"]


class TestTcpProxy:
    async def test_cut_refuses_at_once_and_restore_serves_again(
        self, proxied_settings: ServiceSettings, database_proxy: TcpProxy
    ) -> None:
        engine = create_engine(proxied_settings)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
                assert database_proxy.open_connections == 1
                database_proxy.cut()
                assert database_proxy.open_connections == 0
                with pytest.raises(DBAPIError) as dropped:
                    await conn.execute(text("SELECT 1"))
            assert isinstance(database_error(dropped.value), DatabaseUnavailable)
            started = time.monotonic()
            with pytest.raises(DBAPIError) as refused:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            assert time.monotonic() - started < 1, "a refused connect fails fast"
            assert isinstance(database_error(refused.value), DatabaseUnavailable)
            database_proxy.restore()
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        finally:
            await engine.dispose()


class TestDatabaseErrorsAre503:
    async def test_unreachable_database_is_503_then_serves_again(
        self, client: httpx.AsyncClient, database_proxy: TcpProxy
    ) -> None:
        created = await client.post("/items", json={"name": f"item-{uuid.uuid4().hex[:8]}"})
        assert created.status_code == 201, created.text
        item = f"/items/{created.json()['id']}"
        database_proxy.cut()
        # Pooled connection dropped, then new connections refused: both are 503, at once.
        for _ in range(2):
            started = time.monotonic()
            assert_problem(await client.get(item), "database_unavailable")
            assert time.monotonic() - started < 1
        database_proxy.restore()
        assert (await client.get(item)).status_code == 200  # the pool replaced the dead ones

    async def test_a_partition_is_503_at_the_client_timeout_then_serves_again(
        self, client: httpx.AsyncClient, database_proxy: TcpProxy
    ) -> None:
        created = await client.post("/items", json={"name": f"item-{uuid.uuid4().hex[:8]}"})
        item = f"/items/{created.json()['id']}"
        database_proxy.stall()  # no error, no answer: the server's statement timeout never arrives
        started = time.monotonic()
        answer = await asyncio.wait_for(client.get(item), 10)  # fail, not hang, if it would
        assert_problem(answer, "database_unavailable")
        # The client gives up 2 s after the 0.3 s statement timeout (asyncpg's command timeout;
        # its cancel of the lost statement can add as much again). Without it: a hang.
        assert 2.0 <= time.monotonic() - started < 6.0
        database_proxy.restore()
        assert (await client.get(item)).status_code == 200

    async def test_statement_timeout_is_503_database_timeout(
        self, proxied_settings: ServiceSettings, database_proxy: TcpProxy
    ) -> None:
        engine = create_engine(proxied_settings)  # statement_timeout 300 ms
        try:
            with pytest.raises(DBAPIError) as cancelled:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(2)"))
            assert isinstance(database_error(cancelled.value), DatabaseTimeout)
        finally:
            await engine.dispose()

    async def test_text_the_database_cannot_store_is_422(self, db_engine: AsyncEngine) -> None:
        if db_engine.dialect.name != "postgresql":
            pytest.skip("SQLite stores NUL in text")
        with pytest.raises(DBAPIError) as refused:
            async with db_engine.connect() as conn:
                await conn.execute(text("SELECT :value"), {"value": "a\x00b"})
        assert isinstance(database_error(refused.value), UnstorableText)

    async def test_a_deadlock_is_503_transaction_conflict(self, db_engine: AsyncEngine) -> None:
        if db_engine.dialect.name != "postgresql":
            pytest.skip("SQLite serialises writers: no deadlocks")
        table = f"deadlock_{uuid.uuid4().hex[:8]}"  # generated here: safe to interpolate
        lock_row = text(f"SELECT 1 FROM {table} WHERE id = :id FOR UPDATE")  # noqa: S608
        async with db_engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY)"))
            await conn.execute(text(f"INSERT INTO {table} VALUES (1), (2)"))  # noqa: S608
        try:
            both_locked = asyncio.Barrier(2)

            async def cross(first: int, second: int) -> None:
                async with db_engine.begin() as conn:
                    await conn.execute(lock_row, {"id": first})
                    await both_locked.wait()
                    await conn.execute(lock_row, {"id": second})

            results = await asyncio.gather(cross(1, 2), cross(2, 1), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert len(errors) == 1, results  # PostgreSQL aborts one of the two
            assert isinstance(errors[0], DBAPIError)
            assert isinstance(database_error(errors[0]), TransactionConflict)
        finally:
            async with db_engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE {table}"))

    def test_other_errors_stay_500(self) -> None:
        assert database_error(RuntimeError("bug")) is None
        assert database_error(ValueError("bad input")) is None


class TestPoolGauge:
    async def test_checkouts_that_fail_in_an_outage_do_not_skew_the_gauge(
        self, proxied_settings: ServiceSettings, database_proxy: TcpProxy
    ) -> None:
        gauge = metrics.db_pool_checked_out()
        before = gauge._value.get()
        engine = create_engine(proxied_settings)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            database_proxy.cut()  # the pooled connection is dropped, reconnects are refused
            for _ in range(3):
                with pytest.raises(DBAPIError):
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
            database_proxy.restore()
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                assert gauge._value.get() == before + 1
        finally:
            await engine.dispose()
        assert gauge._value.get() == before
