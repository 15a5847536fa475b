"""A tiny service built on the chassis (one table, one router), to test the chassis itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db.orm import make_metadata
from servicekit.deps import DbSession
from servicekit.errors import Conflict


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
