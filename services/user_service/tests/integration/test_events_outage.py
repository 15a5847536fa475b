"""Redis stopped for 20 s under writes: every acknowledged write's event arrives afterwards.

The service runs on a Redis of its own, stopped and started again on the same socket (it
comes back empty, as a Redis without persistence does). While it is down, profile changes
and registrations keep being acknowledged from PostgreSQL (or SQLite); their events wait in
the outbox, and once Redis is back the relay publishes each subject's events in the order
the writes were acknowledged. A write refused during the outage leaves no event.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.events import EVENT_FIELD, CloudEvent, stream_key
from servicekit.redis import AnyRedis, KeySpace
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.testing import app_client
from user_service.config import UserServiceSettings
from user_service.main import create_app
from user_service.models import User

from ..utils.auth import bearer, login
from ..utils.users import LIVE_PREFIX, PASSWORD, live_email, register

pytestmark = pytest.mark.integration

OUTAGE_S = 20.0
USERS = 4


@pytest.fixture
async def client(
    settings: UserServiceSettings, own_redis: EmbeddedRedis, db_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The user service on the test's own Redis, committing for real."""
    own = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": own_redis.url})}
    )
    async with app_client(create_app(own)) as client:
        yield client
    async with db_engine.begin() as conn:
        await conn.execute(delete(User).where(User.email.like(f"{LIVE_PREFIX}%")))


async def all_events(redis: AnyRedis, settings: UserServiceSettings) -> list[CloudEvent]:
    """Every event in the service's streams, each stream in its order."""
    found = []
    for partition in range(settings.events.partitions):
        entries = await redis.xrange(stream_key(KeySpace.of(settings), partition)) or []
        found += [CloudEvent.model_validate_json(f[EVENT_FIELD]) for _, f in entries if f]
    return found


async def test_events_of_writes_during_a_20_s_outage_arrive_in_order(
    client: httpx.AsyncClient,
    own_redis: EmbeddedRedis,
    own_redis_client: AnyRedis,
    settings: UserServiceSettings,
) -> None:
    users = [await register(client, live_email()) for _ in range(USERS)]
    tokens = [await login(client, user["email"]) for user in users]
    for _ in range(100):  # the events so far are published (and lost with Redis's memory)
        if len(await all_events(own_redis_client, settings)) == 2 * USERS:
            break
        await asyncio.sleep(0.05)
    own_redis.stop()
    names: dict[str, list[str]] = defaultdict(list)  # acknowledged, per user, in order
    registered: list[str] = []
    deadline, n = time.monotonic() + OUTAGE_S, 0
    while time.monotonic() < deadline:
        i = n % USERS
        changed = await client.patch(
            "/api/v1/users/me", json={"full_name": f"name {n}"}, headers=bearer(tokens[i])
        )
        assert changed.status_code == 200, changed.text
        names[users[i]["id"]].append(f"name {n}")
        if n % 10 == 0:
            registered.append((await register(client, live_email()))["id"])
            taken = {"email": users[i]["email"], "password": PASSWORD}
            assert (await client.post("/api/v1/users", json=taken)).status_code == 409
        n += 1
        await asyncio.sleep(0.1)
    own_redis.start()

    expected = sum(map(len, names.values())) + len(registered)
    events: list[CloudEvent] = []
    for _ in range(200):  # bounded: 20 s for the relay's next polls to publish everything
        events = await all_events(own_redis_client, settings)
        if len(events) >= expected:
            break
        await asyncio.sleep(0.1)
    by_user: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event.type == "user.profile_updated.v1":
            by_user[str(event.data["user_id"])].append(event.data["full_name"])
    assert by_user == names
    assert sorted(e.data["user_id"] for e in events if e.type == "user.registered.v1") == sorted(
        registered
    )  # and none of the refused registrations
    assert len(events) == expected
