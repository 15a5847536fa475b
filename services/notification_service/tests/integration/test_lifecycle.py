"""What the user's lifecycle does here: sign-in notices, a deleted account's data erased."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.config import NotificationServiceSettings
from notification_service.models import Delivery, Preferences, Recipient
from servicekit.redis import AnyRedis
from servicekit.testing.smtp import SmtpSink, body_of

from ..utils.events import publish

pytestmark = pytest.mark.integration


async def test_a_sign_in_from_a_new_device_is_noticed_but_not_the_first_or_a_known_one(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    user_id = uuid.uuid4()
    await publish(
        redis_client,
        settings,
        "user.registered.v1",
        {"user_id": user_id, "email": "dev@example.com", "full_name": "Dev", "extra": "ignored"},
    )
    for agent in ("laptop", "laptop", "phone", "laptop"):
        signed_in = {"user_id": user_id, "session_id": uuid.uuid4(), "ip": "203.0.113.9"}
        await publish(
            redis_client, settings, "session.created.v1", {**signed_in, "user_agent": agent}
        )
    message = await smtp_sink.wait_for("Dev <dev@example.com>")
    assert message["Subject"] == "New sign-in to your account"
    assert "Device:  phone" in body_of(message)
    assert "203.0.113.9" in body_of(message)
    await asyncio.sleep(0.5)
    assert len(smtp_sink.messages) == 1


async def test_a_deleted_account_is_erased_and_told_so(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
    db_engine: AsyncEngine,
) -> None:
    user_id = uuid.uuid4()
    email = "gone@example.com"
    await publish(
        redis_client,
        settings,
        "user.registered.v1",
        {"user_id": user_id, "email": email, "full_name": "Gone"},
    )
    changed = {"user_id": user_id, "email": email, "method": "changed"}
    await publish(redis_client, settings, "user.password_changed.v1", changed)
    await smtp_sink.wait_for(f"Gone <{email}>")
    await publish(redis_client, settings, "user.deleted.v1", {"user_id": user_id, "email": email})
    goodbye = await smtp_sink.wait_for(email)
    assert goodbye["Subject"] == "Your account was deleted"

    async def count(*where: Any) -> int:
        async with db_engine.connect() as conn:  # short: on SQLite a reader holds the lock
            found = await conn.scalar(select(func.count()).select_from(Delivery).where(*where))
            return int(found or 0)

    for _ in range(100):  # the courier erases the last address once it is sent
        if await count(Delivery.recipient.is_not(None)) == 0:
            break
        await asyncio.sleep(0.05)
    assert await count(Delivery.recipient.is_not(None)) == 0
    assert await count(Delivery.user_id == user_id) == 0
    assert await count() == 2
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Recipient)) == 0
        assert await conn.scalar(select(func.count()).select_from(Preferences)) == 0


async def test_the_owner_of_a_registered_again_address_is_told(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    user_id = uuid.uuid4()
    email = "owner@example.com"
    await publish(
        redis_client,
        settings,
        "user.registered.v1",
        {"user_id": user_id, "email": email, "full_name": "Owner"},
    )
    attempt = {"user_id": user_id, "email": email}
    await publish(redis_client, settings, "user.registration_attempted.v1", attempt)
    notice = await smtp_sink.wait_for(f"Owner <{email}>")
    assert notice["Subject"] == "Your account already exists"
    assert "http://users.test/reset-password" in body_of(notice)
