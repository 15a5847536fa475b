from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.models import Base

pytestmark = pytest.mark.integration


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


class TestMigrations:
    async def test_head_matches_the_models(self, db_engine: AsyncEngine) -> None:
        assert set(Base.metadata.tables) <= await _tables(db_engine)

    def test_migrations_are_reversible(self, alembic_config: Config) -> None:
        command.downgrade(alembic_config, "base")
        command.upgrade(alembic_config, "head")

    async def test_models_and_migrations_do_not_drift(self, db_engine: AsyncEngine) -> None:
        def diff(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            changes: list[Any] = compare_metadata(context, Base.metadata)
            return changes

        async with db_engine.connect() as conn:
            changes = await conn.run_sync(diff)
        # Tables of other test suites sharing the run's database are not ours to compare.
        ours = [
            c
            for c in changes
            if not (c[0] == "remove_table" and c[1].name not in Base.metadata.tables)
        ]
        assert ours == []
