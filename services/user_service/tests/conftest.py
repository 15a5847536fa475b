"""User service fixtures on top of the servicekit pytest plugin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
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
from servicekit.db.orm import utcnow
from servicekit.settings import DatabaseSettings, Environment
from servicekit.testing import Backends, app_client, override_db_session
from user_service.cli import MIGRATIONS
from user_service.config import UserServiceSettings, default_rate_limits
from user_service.main import create_app
from user_service.models import EmailToken, TokenPurpose, User
from user_service.repositories import EmailTokenRepository
from user_service.tokens import hash_token, new_opaque_token

from .smtp_sink import SmtpSink


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


PASSWORD = "correct horse battery staple"


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    """Register a user with a unique email; returns the user body."""
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    response = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in with JSON; returns the token response."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_link_token(
    db_session: AsyncSession, user: dict[str, Any], purpose: TokenPurpose, *, expires_in_s: float
) -> str:
    """An emailed-link token for ``user`` written straight to the database (to test expiry
    without waiting); returns the token as it would appear in the link."""
    token = new_opaque_token()
    now = utcnow()
    await EmailTokenRepository.from_session(db_session).add(
        EmailToken(
            token_hash=hash_token(token),
            user_id=uuid.UUID(user["id"]),
            purpose=purpose,
            email=user["email"],
            created_at=now - timedelta(minutes=30),
            expires_at=now + timedelta(seconds=expires_in_s),
        )
    )
    return token


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header for a token response."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
async def live_client(
    settings: UserServiceSettings, db_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app's own sessions (real commits, real concurrency).

    Users it registers use the ``live-`` email prefix and are deleted afterwards.
    """
    async with app_client(create_app(settings)) as client:
        yield client
    async with db_engine.begin() as conn:
        await conn.execute(delete(User).where(User.email.like("live-%")))


def live_email() -> str:
    """A unique email removed by the ``live_client`` fixture's clean-up."""
    return f"live-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on a loopback port, collecting what the service sends."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()
