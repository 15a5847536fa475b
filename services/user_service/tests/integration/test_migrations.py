from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing.migrations import schema_drift
from user_service.models import Base

pytestmark = pytest.mark.integration


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _current_revision(engine: AsyncEngine) -> str | None:
    """The revision Alembic has recorded in the database (``None``: base)."""

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(current)


class TestMigrations:
    async def test_migrations_are_reversible(
        self, alembic_config: Config, db_engine: AsyncEngine
    ) -> None:
        head = ScriptDirectory.from_config(alembic_config).get_current_head()
        ours = set(Base.metadata.tables)
        assert head is not None
        assert await _current_revision(db_engine) == head
        # Alembic's commands run their own event loop (env.py): off this one, in a thread.
        await asyncio.to_thread(command.downgrade, alembic_config, "base")
        assert await _current_revision(db_engine) is None
        assert (await _tables(db_engine)) & ours == set(), "base still has service tables"
        await asyncio.to_thread(command.upgrade, alembic_config, "head")
        assert await _current_revision(db_engine) == head
        assert ours <= await _tables(db_engine)
        assert await schema_drift(db_engine, Base.metadata) == [], (
            "the re-created schema differs from the models"
        )

    async def test_models_and_migrations_do_not_drift(self, db_engine: AsyncEngine) -> None:
        assert await schema_drift(db_engine, Base.metadata) == []
