"""The migrations build exactly the models' schema, and go down and up again."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.cli import MIGRATIONS
from notification_service.models import Base, Delivery
from servicekit.db.migrations import alembic_config
from servicekit.testing.migrations import schema_drift

pytestmark = pytest.mark.integration


async def test_down_to_base_and_up_again_without_drift(
    database_url: str, db_engine: AsyncEngine, notification_tables: None
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    ours = set(Base.metadata.tables)
    assert await schema_drift(db_engine, Base.metadata) == []
    # Alembic's commands run their own event loop (env.py): off this one, in a thread.
    await asyncio.to_thread(command.downgrade, config, "base")
    async with db_engine.connect() as conn:
        left = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert left & ours == set()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await schema_drift(db_engine, Base.metadata) == []


async def test_going_down_to_one_delivery_per_event_keeps_an_email_changes_link_mail(
    database_url: str, db_engine: AsyncEngine, notification_tables: None
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    event_id = str(uuid.uuid4())
    kinds = ("email_change_notice", "email_change")
    rows = [{"event_id": event_id, "kind": kind, "message_id": f"<{kind}@test>"} for kind in kinds]
    async with db_engine.begin() as conn:
        await conn.execute(insert(Delivery), rows)
    try:
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with db_engine.connect() as conn:
            left = await conn.scalars(select(Delivery.kind).where(Delivery.event_id == event_id))
            assert list(left) == ["email_change"]
    finally:
        await asyncio.to_thread(command.upgrade, config, "head")
        async with db_engine.begin() as conn:
            await conn.execute(delete(Delivery).where(Delivery.event_id == event_id))
    assert await schema_drift(db_engine, Base.metadata) == []
