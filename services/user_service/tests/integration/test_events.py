"""The user service publishes its lifecycle: each change and its event commit together."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from servicekit.db import AsyncSession, commit, create_sessionmaker
from servicekit.events import (
    EVENT_FIELD,
    CloudEvent,
    EventRecorder,
    Sealer,
    partition_of,
    stream_key,
)
from servicekit.redis import AnyRedis, KeySpace
from servicekit.testing.process import ServiceProcess
from user_service.config import UserServiceSettings
from user_service.models import Role, outbox
from user_service.schemas.events import (
    EmailVerificationRequested,
    UserRegistered,
    catalog,
    user_subject,
)

from ..utils.auth import bearer, login
from ..utils.users import live_email, register

pytestmark = pytest.mark.integration


async def user_events(
    redis: AnyRedis, settings: UserServiceSettings, user_id: str, count: int
) -> list[CloudEvent]:
    """The user's events in their stream, once ``count`` have arrived (bounded wait)."""
    subject = f"user/{user_id}"
    stream = stream_key(KeySpace.of(settings), partition_of(subject, settings.events.partitions))
    events: list[CloudEvent] = []
    for _ in range(200):  # bounded: 10 s
        entries = await redis.xrange(stream) or []
        events = [
            envelope
            for _, fields in entries
            if fields
            and (envelope := CloudEvent.model_validate_json(fields[EVENT_FIELD])).partitionkey
            == subject
        ]
        if len(events) >= count:
            break
        await asyncio.sleep(0.05)
    return events


async def test_lifecycle_events_reach_the_stream_in_commit_order(
    live_client: httpx.AsyncClient, redis_client: AnyRedis, settings: UserServiceSettings
) -> None:
    email = live_email()
    user = await register(live_client, email)
    tokens = await login(live_client, email)
    changed = await live_client.patch(
        "/api/v1/users/me", json={"full_name": "Ada"}, headers=bearer(tokens)
    )
    assert changed.status_code == 200, changed.text
    logout = await live_client.post("/api/v1/auth/logout", headers=bearer(tokens))
    assert logout.status_code == 204

    events = await user_events(redis_client, settings, user["id"], 4)
    assert [e.type for e in events] == [
        "user.registered.v1",
        "session.created.v1",
        "user.profile_updated.v1",
        "session.revoked.v1",
    ]
    parsed = [catalog().parse(e) for e in events]  # every payload matches its schema
    assert parsed[0].model_dump()["email"] == email
    assert events[3].data["reason"] == "logout"
    assert events[1].subject == f"user/{user['id']}/session/{tokens['session_id']}"
    assert all(e.source == "/user_service" for e in events)


async def test_a_link_mail_travels_sealed_and_its_token_verifies_the_address(
    live_client: httpx.AsyncClient, redis_client: AnyRedis, settings: UserServiceSettings
) -> None:
    email = live_email()
    user = await register(live_client, email)
    asked = await live_client.post("/api/v1/auth/verify-email/request", json={"email": email})
    assert asked.status_code == 202, asked.text
    events = await user_events(redis_client, settings, user["id"], 2)
    request = events[-1]
    assert request.type == "user.email_verification_requested.v1"
    payload = catalog().parse(request)
    assert isinstance(payload, EmailVerificationRequested)
    token = Sealer(settings.events.seal_keys).open(payload.token)
    streams = [stream_key(KeySpace.of(settings), p) for p in range(settings.events.partitions)]
    entries = [await redis_client.xrange(stream) for stream in streams]
    assert token not in str(entries)  # nowhere in clear on the streams
    confirmed = await live_client.post("/api/v1/auth/verify-email/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["is_verified"] is True


async def test_registration_records_its_event_in_the_request_transaction(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    """The client shares the test's transaction: the row is there before anything commits."""
    accepted = await register(client, "strong@example.com")
    rows = await db_session.execute(
        select(outbox.events.c.type).where(
            outbox.events.c.partition_key == f"user/{accepted['id']}"
        )
    )
    assert rows.scalars().all() == ["user.registered.v1"]


async def record_registration(
    sessionmaker: async_sessionmaker[AsyncSession], settings: UserServiceSettings, email: str
) -> str:
    """Commit a ``user.registered`` event alone (no user row: the relay reads the outbox)."""
    user_id = uuid.uuid4()
    recorder = EventRecorder.of(settings, outbox)
    event = UserRegistered(
        user_id=user_id, email=email, full_name="", role=Role.USER, is_verified=False
    )
    async with sessionmaker() as session:
        await recorder(session, event, subject=user_subject(user_id))
        await commit(session)
    return str(user_id)


def start_relay(tmp_path: Path, settings: UserServiceSettings, database_url: str) -> ServiceProcess:
    assert settings.redis.url is not None
    return ServiceProcess(
        [str(Path(sys.executable).parent / "user-service"), "relay"],
        log_path=tmp_path / "relay.log",
        env={
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.redis.url,
            "USER_SERVICE_REDIS__KEY_PREFIX": settings.redis.key_prefix,
            "USER_SERVICE_REDIS__CLUSTER": "true" if settings.redis.cluster else "false",
        },
    )


async def test_the_relay_command_publishes_what_a_killed_relay_left(
    tmp_path: Path,
    settings: UserServiceSettings,
    database_url: str,
    db_engine: AsyncEngine,
    redis_client: AnyRedis,
) -> None:
    sessionmaker = create_sessionmaker(db_engine)
    relay = start_relay(tmp_path, settings, database_url)
    try:
        first = await record_registration(sessionmaker, settings, live_email())
        assert len(await user_events(redis_client, settings, first, 1)) == 1
        relay.kill()  # SIGKILL: whatever it held uncommitted is rolled back
        second = await record_registration(sessionmaker, settings, live_email())
        relay = start_relay(tmp_path, settings, database_url)
        assert len(await user_events(redis_client, settings, second, 1)) == 1, relay.output()
        assert relay.stop() == 0  # SIGTERM: a clean stop
    finally:
        relay.kill()
