"""User service fixtures on top of the servicekit pytest plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.db.migrations import alembic_config as make_alembic_config
from servicekit.settings import DatabaseSettings, Environment
from servicekit.testing import Backends, app_client, override_db_session
from user_service.cli import MIGRATIONS
from user_service.config import UserServiceSettings, default_rate_limits
from user_service.main import create_app
from user_service.models import User

from .utils.clients import ClientWith
from .utils.users import LIVE_PREFIX


@pytest.fixture(scope="session")
def alembic_config(database_url: str) -> Config:
    """Alembic pointed at the run's database."""
    return make_alembic_config(MIGRATIONS, database_url)


@pytest.fixture(scope="session", autouse=True)
def migrated_database(alembic_config: Config) -> None:
    """The run's database is built by the service's real migrations, not ``create_all``."""
    command.upgrade(alembic_config, "head")


@pytest.fixture(scope="session")
def settings(
    servicekit_backends: Backends, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> UserServiceSettings:
    # Hundreds of tests register and sign in from one address: limits are switched on by
    # the tests about them (see tests/api/test_rate_limits.py).
    rate_limit = default_rate_limits().model_copy(update={"enabled": False})
    return UserServiceSettings(
        environment=Environment.TEST,
        rate_limit=rate_limit,
        data_dir=tmp_path_factory.mktemp("user-service-data"),
        database=DatabaseSettings(url=database_url),
        redis=servicekit_backends.redis_settings(),
    )


@pytest.fixture
def app(settings: UserServiceSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI, db_session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests share the test's rolled-back transaction."""
    override_db_session(app, db_session)
    async with app_client(app) as client:
        yield client


@pytest.fixture
async def live_client(
    settings: UserServiceSettings, db_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app's own sessions (real commits, real concurrency).

    Users registered with a ``live_email()`` address are deleted afterwards.
    """
    async with app_client(create_app(settings)) as client:
        yield client
    async with db_engine.begin() as conn:
        await conn.execute(delete(User).where(User.email.like(f"{LIVE_PREFIX}%")))


@pytest.fixture
def client_with(settings: UserServiceSettings, db_session: AsyncSession) -> ClientWith:
    """A rolled-back client of an app whose settings groups are updated.

    For example ``client_with(http={"cors_origins": [...]})``.
    """

    @asynccontextmanager
    async def make(**groups: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
        update = {name: getattr(settings, name).model_copy(update=v) for name, v in groups.items()}
        app = create_app(settings.model_copy(update=update))
        override_db_session(app, db_session)
        async with app_client(app) as client:
            yield client

    return make
