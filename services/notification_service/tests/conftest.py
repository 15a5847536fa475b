"""Notification service fixtures on top of the servicekit pytest plugin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.cli import MIGRATIONS
from notification_service.config import (
    CourierSettings,
    EmailSettings,
    NotificationServiceSettings,
    SmtpSettings,
)
from notification_service.main import create_app
from notification_service.models import Delivery, Preferences, Recipient, inbox
from servicekit.auth import SessionDenylist
from servicekit.db.migrations import upgrade
from servicekit.redis import AnyRedis, KeySpace
from servicekit.settings import ConsumerSettings, DatabaseSettings, Environment
from servicekit.testing import Backends, app_client
from servicekit.testing.smtp import SmtpSink

from .utils.tokens import Issuer


@pytest.fixture(scope="session")
def notification_tables(database_url: str) -> None:
    """The run's database gets the service's tables from its real migrations."""
    upgrade(MIGRATIONS, database_url)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on a loopback port, collecting what the service sends."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def settings(
    servicekit_backends: Backends,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp_sink: SmtpSink,
    notification_tables: None,
) -> NotificationServiceSettings:
    """Settings of one test: its own user-service key space (streams, denylist) and SMTP."""
    redis = servicekit_backends.redis_settings()
    return NotificationServiceSettings(
        environment=Environment.TEST,
        data_dir=tmp_path_factory.mktemp("notification-service-data"),
        database=DatabaseSettings(url=database_url),
        redis=redis.model_copy(update={"key_prefix": f"{redis.key_prefix}{uuid.uuid4().hex[:8]}:"}),
        email=EmailSettings(
            backend="smtp",
            from_address="mail@notify.test",
            frontend_url="http://users.test",
            smtp=SmtpSettings(host="127.0.0.1", port=smtp_sink.port, start_tls=False, timeout_s=2),
        ),
        courier=CourierSettings(backoff_base_s=0.2, lease_s=2.0, poll_interval_s=0.1),
        consumer=ConsumerSettings(max_attempts=2, claim_idle_ms=1000),
    )


@pytest.fixture
def issuer(settings: NotificationServiceSettings) -> Issuer:
    return Issuer(settings.users)


@pytest.fixture
async def app(
    settings: NotificationServiceSettings, issuer: Issuer, redis_client: AnyRedis
) -> AsyncIterator[FastAPI]:
    """The service, its JWKS reached through an in-process copy of the issuer's endpoint."""
    keys = KeySpace(settings.users.namespace, settings.redis.key_prefix)
    await SessionDenylist(redis_client, keys=keys).mark_complete()  # as the issuer's rebuild
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=issuer.app()), base_url="http://users.test"
    ) as users:
        yield create_app(settings, users_client=users)


@pytest.fixture
async def client(app: FastAPI, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running service (courier and consumers in process, real commits)."""
    async with app_client(app) as client:
        yield client
    async with db_engine.begin() as conn:
        for model in (Delivery, Recipient, Preferences):
            await conn.execute(delete(model))
        await conn.execute(delete(inbox.events))
