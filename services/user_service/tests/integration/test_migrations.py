from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
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
