"""A tiny service built on the chassis, to test the chassis itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Body, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.app import create_app
from servicekit.db.orm import make_metadata
from servicekit.deps import DbSession
from servicekit.errors import Conflict
from servicekit.settings import ServiceSettings

# Fixtures of the cache tests (test_cache.py, test_cache_degraded.py).
from .cache_support import cache, name  # noqa: F401


class Base(DeclarativeBase):
    metadata = make_metadata()


class Item(Base):
    __tablename__ = "kit_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class ItemIn(BaseModel):
    name: str
    fail: bool = False


def items_router() -> APIRouter:
    router = APIRouter(prefix="/items")

    @router.post("", status_code=201)
    async def create_item(
        session: DbSession, item: Annotated[ItemIn, Body()]
    ) -> dict[str, int | str]:
        row = Item(name=item.name)
        session.add(row)
        await session.flush()
        if item.fail:
            raise Conflict("asked to fail after the insert")
        return {"id": row.id, "name": row.name}

    @router.get("/{item_id}")
    async def get_item(session: DbSession, item_id: int) -> dict[str, int | str]:
        row = (await session.execute(select(Item).where(Item.id == item_id))).scalar_one()
        return {"id": row.id, "name": row.name}

    @router.post("/raw")
    async def raw_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.get("/boom/now")
    async def boom() -> None:
        raise RuntimeError("secret-token-abc SELECT * FROM users")

    return router


@pytest.fixture(scope="session")
async def kit_tables(db_engine: AsyncEngine) -> AsyncIterator[None]:
    async with db_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    async with db_engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)


@pytest.fixture
def kit_app(test_settings: ServiceSettings, kit_tables: None) -> FastAPI:
    return create_app(test_settings, [items_router()])
