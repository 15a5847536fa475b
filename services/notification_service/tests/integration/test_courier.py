"""From a user event to a mail in a real SMTP server: once, retried, or failed with a reason."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.config import NotificationServiceSettings
from notification_service.models import Delivery, DeliveryStatus
from servicekit.redis import AnyRedis
from servicekit.testing.smtp import SmtpSink, body_of, token_in

from ..utils.events import link_request, publish

pytestmark = pytest.mark.integration

Deliveries = Callable[[], Awaitable[list[Delivery]]]


@pytest.fixture
def deliveries(db_engine: AsyncEngine) -> Deliveries:
    async def read() -> list[Delivery]:
        async with db_engine.connect() as conn:
            rows = await conn.execute(select(Delivery.__table__).order_by(Delivery.created_at))
            return [Delivery(**row._mapping) for row in rows]

    return read


async def settled(deliveries: Deliveries, count: int) -> list[Delivery]:
    """The deliveries once ``count`` exist and none is pending (bounded: 10 s)."""
    found: list[Delivery] = []
    for _ in range(200):
        found = await deliveries()
        if len(found) >= count and all(d.status is not DeliveryStatus.PENDING for d in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries not settled: {[(d.kind, d.status) for d in found]}")


async def test_a_verification_request_is_mailed_once_with_a_working_link(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
    deliveries: Deliveries,
) -> None:
    user_id = uuid.uuid4()
    data = link_request(settings, user_id, "ada@example.com", "the-token")
    event = await publish(redis_client, settings, "user.email_verification_requested.v1", data)
    await publish(  # redelivered: the same event id again
        redis_client, settings, event.type, data, event_id=event.id
    )
    message = await smtp_sink.wait_for("Ada Lovelace <ada@example.com>")
    assert token_in(message) == "the-token"
    assert body_of(message).startswith("Hello Ada Lovelace,")
    assert "http://users.test/verify-email?token=the-token" in body_of(message)
    html = message.get_body(("html",))
    assert html is not None
    assert 'href="http://users.test/verify-email?token=the-token"' in html.get_content()
    (delivery,) = await settled(deliveries, 1)
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.subject == "Confirm your email address"
    assert delivery.provider_response
    assert message["Message-ID"] == delivery.message_id
    assert "the-token" not in str(delivery.context)  # sealed at rest
    await asyncio.sleep(0.3)
    assert len(smtp_sink.messages) == 1


async def test_html_escapes_the_name_and_text_keeps_it(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
) -> None:
    data = link_request(settings, uuid.uuid4(), "eve@example.com", "t")
    data["full_name"] = "<b>Eve</b>"
    await publish(redis_client, settings, "user.password_reset_requested.v1", data)
    message = await smtp_sink.wait_for('"<b>Eve</b>" <eve@example.com>')
    html = message.get_body(("html",))
    assert html is not None
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html.get_content()
    assert "<b>Eve</b>" not in html.get_content()
    assert "Hello <b>Eve</b>," in body_of(message)


async def test_an_smtp_outage_is_retried_until_the_mail_is_delivered_once(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
    deliveries: Deliveries,
) -> None:
    smtp_sink.stop()
    data = link_request(settings, uuid.uuid4(), "bob@example.com", "t2")
    await publish(redis_client, settings, "user.email_verification_requested.v1", data)
    for _ in range(100):  # two failed attempts (0.2 s, then 0.4 s apart)
        attempted = await deliveries()
        if attempted and attempted[0].attempts >= 2:
            break
        await asyncio.sleep(0.05)
    assert attempted[0].status is DeliveryStatus.PENDING
    assert attempted[0].last_error
    smtp_sink.start()
    await smtp_sink.wait_for("Ada Lovelace <bob@example.com>", timeout_s=10)
    (delivery,) = await settled(deliveries, 1)
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.last_error is None


async def test_refused_address_unknown_user_and_muted_kind_end_without_a_mail(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    smtp_sink: SmtpSink,
    deliveries: Deliveries,
) -> None:
    smtp_sink.refuse("nobody@example.com")
    await publish(
        redis_client,
        settings,
        "user.email_verification_requested.v1",
        link_request(settings, uuid.uuid4(), "nobody@example.com", "t3"),
    )
    stranger = {"user_id": uuid.uuid4(), "session_id": uuid.uuid4(), "ip": None, "user_agent": "x"}
    await publish(redis_client, settings, "session.created.v1", stranger)
    found = {d.kind: d for d in await settled(deliveries, 2)}
    assert found["verify_email"].status is DeliveryStatus.FAILED
    assert "550" in (found["verify_email"].last_error or "")
    assert found["verify_email"].attempts == 1  # permanent: never retried
    assert found["new_sign_in"].status is DeliveryStatus.FAILED
    assert "unknown recipient" in (found["new_sign_in"].last_error or "")
    assert smtp_sink.messages == []
