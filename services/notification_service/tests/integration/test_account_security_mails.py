"""Account-security mail: an address change told to both addresses, MFA and recovery codes."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.config import NotificationServiceSettings
from notification_service.models import Delivery, DeliveryStatus, Recipient
from servicekit.redis import AnyRedis
from servicekit.testing.smtp import SmtpSink, body_of, token_in

from ..utils.events import link_request, publish

pytestmark = pytest.mark.integration

OLD = "ada@old.example"
NEW = "ada@new.example"


async def register(
    redis: AnyRedis, settings: NotificationServiceSettings, email: str = OLD
) -> uuid.UUID:
    """A new user known at ``email``, named Ada Lovelace."""
    user_id = uuid.uuid4()
    data = {"user_id": user_id, "email": email, "full_name": "Ada Lovelace"}
    await publish(redis, settings, "user.registered.v1", data)
    return user_id


async def settled(db_engine: AsyncEngine, user_id: uuid.UUID, count: int) -> list[Delivery]:
    """The user's deliveries once ``count`` exist and none is pending (bounded: 10 s)."""
    found: list[Delivery] = []
    for _ in range(200):
        async with db_engine.connect() as conn:  # short: on SQLite a reader holds the lock
            rows = await conn.execute(select(Delivery.__table__).where(Delivery.user_id == user_id))
            found = [Delivery(**row._mapping) for row in rows]
        if len(found) >= count and all(d.status is not DeliveryStatus.PENDING for d in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries not settled: {[(d.kind, d.status) for d in found]}")


async def test_an_email_change_request_mails_a_link_to_the_new_address_and_tells_the_old(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
    db_engine: AsyncEngine,
) -> None:
    user_id = await register(redis_client, settings)
    data = {**link_request(settings, user_id, NEW, "change-token"), "previous_email": OLD}
    event = await publish(redis_client, settings, "user.email_change_requested.v1", data)
    await publish(  # redelivered: the same event id again
        redis_client, settings, event.type, data, event_id=event.id
    )
    link = await smtp_sink.wait_for(f"Ada Lovelace <{NEW}>")
    assert link["Subject"] == "Confirm your new email address"
    assert token_in(link) == "change-token"
    assert "http://users.test/confirm-email-change?token=change-token" in body_of(link)
    html = link.get_body(("html",))
    assert html is not None
    assert 'href="http://users.test/confirm-email-change?token=change-token"' in html.get_content()
    notice = await smtp_sink.wait_for(f"Ada Lovelace <{OLD}>")
    assert notice["Subject"] == "A change of your email address was requested"
    assert NEW in body_of(notice)
    assert "change-token" not in body_of(notice)
    assert "://" not in body_of(notice)  # no link: the old address confirms nothing
    found = {d.kind: d for d in await settled(db_engine, user_id, 2)}
    assert set(found) == {"email_change", "email_change_notice"}
    assert {d.event_id for d in found.values()} == {event.id}
    assert {d.status for d in found.values()} == {DeliveryStatus.SENT}
    assert "change-token" not in str(found["email_change"].context)  # sealed at rest
    await asyncio.sleep(0.3)
    assert len(smtp_sink.messages) == 2
    async with db_engine.connect() as conn:  # not the account's address until confirmed
        assert await conn.scalar(select(Recipient.email).where(Recipient.user_id == user_id)) == OLD


async def test_a_changed_address_is_told_to_the_old_one_and_mailed_from_then_on(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    user_id = await register(redis_client, settings)
    changed = {"user_id": user_id, "email": NEW, "previous_email": OLD}
    await publish(redis_client, settings, "user.email_changed.v1", changed)
    # A notice addressed by the stored recipient, not by its event: the new address now.
    changed_password = {"user_id": user_id, "email": OLD, "method": "changed"}
    await publish(redis_client, settings, "user.password_changed.v1", changed_password)
    notice = await smtp_sink.wait_for(f"Ada Lovelace <{OLD}>")
    assert notice["Subject"] == "Your email address was changed"
    assert f"it is now\n{NEW}," in body_of(notice)
    later = await smtp_sink.wait_for(f"Ada Lovelace <{NEW}>")
    assert later["Subject"] == "Your password was changed"
    assert body_of(later).startswith("Hello Ada Lovelace,")
    await asyncio.sleep(0.3)
    assert len(smtp_sink.to(f"Ada Lovelace <{OLD}>")) == 1
    assert len(smtp_sink.messages) == 2


async def test_mfa_switched_off_says_whether_an_administrator_reset_it(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    user_id = await register(redis_client, settings)
    for actor_id in (uuid.uuid4(), None, user_id):  # an administrator, the user, the user
        disabled = {"user_id": user_id, "email": OLD, "actor_id": actor_id}
        await publish(redis_client, settings, "user.mfa_disabled.v1", disabled)
    await smtp_sink.wait_for(f"Ada Lovelace <{OLD}>", count=3)
    messages = smtp_sink.to(f"Ada Lovelace <{OLD}>")
    assert {m["Subject"] for m in messages} == {"Two-factor authentication was turned off"}
    by_admin = [m for m in messages if "administrator" in body_of(m)]
    assert len(by_admin) == 1
    assert "An administrator reset the two-factor authentication" in body_of(by_admin[0])


async def test_a_used_recovery_code_says_how_many_are_left_and_when_to_make_new_ones(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    user_id = await register(redis_client, settings)
    for remaining in (7, 2):
        used = {"user_id": user_id, "email": OLD, "remaining": remaining}
        await publish(redis_client, settings, "user.recovery_code_used.v1", used)
    await smtp_sink.wait_for(f"Ada Lovelace <{OLD}>", count=2)
    bodies = {
        remaining: body
        for body in map(body_of, smtp_sink.to(f"Ada Lovelace <{OLD}>"))
        for remaining in (7, 2)
        if f"You have {remaining} recovery codes left." in body
    }
    assert set(bodies) == {7, 2}
    assert "Generate a new set of recovery codes now" in bodies[2]
    assert "Generate a new set of recovery codes now" not in bodies[7]


async def test_a_security_notice_for_an_account_not_seen_yet_goes_to_the_events_address(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    """No ``user.registered`` was consumed (it predates this service): the event's address."""
    enabled = {"user_id": uuid.uuid4(), "email": "unseen@example.com"}
    await publish(redis_client, settings, "user.mfa_enabled.v1", enabled)
    notice = await smtp_sink.wait_for("unseen@example.com")
    assert notice["Subject"] == "Two-factor authentication was turned on"
