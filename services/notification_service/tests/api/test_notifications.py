"""The resource API: one's own notifications and preferences, an administrator's deliveries."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from notification_service.config import NotificationServiceSettings
from servicekit.auth import SessionDenylist
from servicekit.redis import AnyRedis, KeySpace
from servicekit.testing.smtp import SmtpSink

from ..utils.events import link_request, publish
from ..utils.tokens import Issuer, bearer

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def registered(
    redis: AnyRedis, settings: NotificationServiceSettings, email: str
) -> uuid.UUID:
    user_id = uuid.uuid4()
    data = {"user_id": user_id, "email": email, "full_name": "Grace", "role": "user"}
    await publish(redis, settings, "user.registered.v1", data)
    return user_id


async def listed(client: httpx.AsyncClient, token: str, count: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for _ in range(200):  # bounded: 10 s for the consumer and the courier
        answer = await client.get("/api/v1/notifications", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        if len(items) >= count and all(i["status"] != "pending" for i in items):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(items)


async def test_own_notifications_newest_first_paginated_and_without_links(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    issuer: Issuer,
    smtp_sink: SmtpSink,
) -> None:
    me = await registered(redis_client, settings, "grace@example.com")
    other = await registered(redis_client, settings, "other@example.com")
    for user in (me, other):
        await publish(
            redis_client,
            settings,
            "user.email_verification_requested.v1",
            link_request(settings, user, "grace@example.com", "secret-token"),
        )
    await publish(
        redis_client,
        settings,
        "user.email_verified.v1",
        {"user_id": me, "email": "grace@example.com"},
    )
    token = issuer.token(me)
    items = await listed(client, token, 2)
    assert [i["kind"] for i in items] == ["welcome", "verify_email"]
    assert "secret-token" not in str(items)
    first = await client.get("/api/v1/notifications?limit=1", headers=bearer(token))
    assert [i["kind"] for i in first.json()["items"]] == ["welcome"]
    cursor = first.json()["next_cursor"]
    second = await client.get(
        f"/api/v1/notifications?limit=1&cursor={cursor}", headers=bearer(token)
    )
    assert [i["kind"] for i in second.json()["items"]] == ["verify_email"]
    assert second.json()["next_cursor"] is None
    bad = await client.get("/api/v1/notifications?cursor=garbage", headers=bearer(token))
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_cursor")


async def test_welcome_mail_can_be_switched_off_security_mail_cannot(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    issuer: Issuer,
    smtp_sink: SmtpSink,
) -> None:
    me = await registered(redis_client, settings, "quiet@example.com")
    token = issuer.token(me)
    refused = await client.put(
        "/api/v1/notification-preferences",
        json={"muted": ["password_reset"]},
        headers=bearer(token),
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "security_mail_required")
    unknown = await client.put(
        "/api/v1/notification-preferences", json={"muted": ["spam"]}, headers=bearer(token)
    )
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_mail_kind")
    saved = await client.put(
        "/api/v1/notification-preferences", json={"muted": ["welcome"]}, headers=bearer(token)
    )
    assert saved.status_code == 200, saved.text
    enabled = {k["kind"]: k["enabled"] for k in saved.json()["kinds"]}
    assert enabled["welcome"] is False
    assert enabled["password_reset"] is True
    read = await client.get("/api/v1/notification-preferences", headers=bearer(token))
    assert read.json() == saved.json()
    await publish(
        redis_client,
        settings,
        "user.email_verified.v1",
        {"user_id": me, "email": "quiet@example.com"},
    )
    (item,) = await listed(client, token, 1)
    assert (item["kind"], item["status"]) == ("welcome", "suppressed")
    assert smtp_sink.messages == []


async def test_failed_deliveries_are_listed_and_retried_by_an_administrator(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    issuer: Issuer,
    smtp_sink: SmtpSink,
) -> None:
    me = await registered(redis_client, settings, "bounce@example.com")
    smtp_sink.refuse("bounce@example.com")
    await publish(
        redis_client,
        settings,
        "user.password_changed.v1",
        {"user_id": me, "email": "bounce@example.com", "method": "changed"},
    )
    await listed(client, issuer.token(me), 1)
    user_token, admin_token = issuer.token(uuid.uuid4()), issuer.token(uuid.uuid4(), scopes="admin")
    forbidden = await client.get("/api/v1/deliveries?status=failed", headers=bearer(user_token))
    assert (forbidden.status_code, forbidden.headers["content-type"]) == (403, PROBLEM)
    failed = await client.get("/api/v1/deliveries?status=failed", headers=bearer(admin_token))
    (delivery,) = failed.json()["items"]
    assert delivery["kind"] == "password_changed"
    assert "550" in delivery["last_error"]
    smtp_sink.refused.clear()
    retried = await client.post(
        f"/api/v1/deliveries/{delivery['id']}/retry", headers=bearer(admin_token)
    )
    assert retried.status_code == 202, retried.text
    message = await smtp_sink.wait_for("Grace <bounce@example.com>")
    assert message["Subject"] == "Your password was changed"
    again = await client.post(
        f"/api/v1/deliveries/{delivery['id']}/retry", headers=bearer(admin_token)
    )
    assert (again.status_code, again.json()["error"]) == (409, "delivery_not_failed")
    missing = await client.post(
        f"/api/v1/deliveries/{uuid.uuid4()}/retry", headers=bearer(admin_token)
    )
    assert (missing.status_code, missing.json()["error"]) == (404, "delivery_not_found")


async def test_a_revoked_session_is_refused_within_a_second(
    client: httpx.AsyncClient,
    redis_client: AnyRedis,
    settings: NotificationServiceSettings,
    issuer: Issuer,
) -> None:
    session_id = uuid.uuid4()
    token = issuer.token(uuid.uuid4(), session_id=session_id)
    assert (await client.get("/api/v1/notifications", headers=bearer(token))).status_code == 200
    denylist = SessionDenylist(
        redis_client, keys=KeySpace(settings.users.namespace, settings.redis.key_prefix)
    )
    await denylist.revoke([(session_id, 600)])  # what the user service's logout writes
    deadline = time.monotonic() + 1.0
    status = 200
    while time.monotonic() < deadline and status != 401:
        status = (await client.get("/api/v1/notifications", headers=bearer(token))).status_code
        await asyncio.sleep(0.02)
    assert status == 401
    anonymous = await client.get("/api/v1/notifications")
    assert (anonymous.status_code, anonymous.headers["content-type"]) == (401, PROBLEM)
