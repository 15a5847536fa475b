"""The migrations build exactly the models' schema, and go down and up again."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.cli import MIGRATIONS
from notification_service.models import Base
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
