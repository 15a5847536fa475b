"""The Redis denylist is rebuilt from PostgreSQL when Redis loses it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from servicekit.auth.denylist import denylist_prefix
from servicekit.redis import AnyRedis
from servicekit.redis.keys import KeySpace
from user_service.config import UserServiceSettings

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, live_email

pytestmark = pytest.mark.integration


async def test_lost_denylist_is_rebuilt_and_revoked_tokens_stay_rejected(
    live_client: httpx.AsyncClient, redis_client: AnyRedis, settings: UserServiceSettings
) -> None:
    email = live_email()
    await live_client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    revoked = await login(live_client, email)
    kept = await login(live_client, email)
    assert (
        await live_client.post("/api/v1/auth/logout", headers=bearer(revoked))
    ).status_code == 204

    prefix = denylist_prefix(KeySpace.of(settings))
    expected = {f"{prefix}{revoked['session_id']}", f"{prefix}complete"}
    lost = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    assert expected <= set(lost)
    await redis_client.delete(*lost)  # as after a restart without persistence or a FLUSHALL

    # Meanwhile revocation is answered from PostgreSQL: nothing slips through.
    assert (await live_client.get("/api/v1/users/me", headers=bearer(revoked))).status_code == 401
    assert (await live_client.get("/api/v1/users/me", headers=bearer(kept))).status_code == 200

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        rebuilt = {key async for key in redis_client.scan_iter(match=f"{prefix}*")}
        if expected <= rebuilt:
            break
        await asyncio.sleep(0.1)
    assert expected <= rebuilt
    assert (await live_client.get("/api/v1/users/me", headers=bearer(revoked))).status_code == 401
