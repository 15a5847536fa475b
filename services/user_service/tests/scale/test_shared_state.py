"""State that must be one across instances: revocations, rate limits, lockouts, caches.

Each test talks to two instances directly (A and B), so it knows which instance saw what;
the instances count a request as coming from the forwarded client, as behind nginx.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, register
from .replicas import LOCKOUT_THRESHOLD, LOGIN_IP_LIMIT, Cluster, forwarded_client

pytestmark = pytest.mark.scale

ME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"
PROBLEM = "application/problem+json"


@pytest.fixture
def client() -> dict[str, str]:
    """This test's own client address (its own rate-limit budget), used on A and B."""
    return forwarded_client()


@pytest.fixture
async def a(cluster: Cluster, client: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.a, headers=client, timeout=10) as http:
        yield http


@pytest.fixture
async def b(cluster: Cluster, client: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.b, headers=client, timeout=10) as http:
        yield http


async def seconds_until(check: Callable[[], Awaitable[bool]], give_up_s: float = 3.0) -> float:
    """Seconds from now until ``check()`` first holds, polled every 20 ms.

    Polling goes on past the 1 s the callers require, so a slow propagation is reported
    with its real delay; after ``give_up_s`` the test fails.
    """
    start = time.monotonic()
    while time.monotonic() - start < give_up_s:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    pytest.fail(f"still not true after {give_up_s} s")


async def test_logout_on_a_is_refused_on_b_within_a_second(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    user = await register(a)
    tokens = await login(a, user["email"])
    assert (await b.get(ME, headers=bearer(tokens))).status_code == 200  # B knows the session

    assert (await a.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 204

    async def refused_on_b() -> bool:
        response = await b.get(ME, headers=bearer(tokens))
        if response.status_code == 200:
            return False
        assert response.status_code == 401, response.text
        assert "revoked" in response.json()["detail"]
        return True

    assert await seconds_until(refused_on_b) < 1.0


async def test_rate_limits_count_requests_on_every_instance(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    async def attempt(
        instance: httpx.AsyncClient, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        # A new account name each time, so only the per-address rule can refuse.
        body = {"email": f"ghost-{uuid.uuid4().hex[:12]}@example.com", "password": "wrong pass"}
        return await instance.post(LOGIN, json=body, headers=headers)

    # Alternating, each instance sees half the requests: counted per instance, the limit
    # would only be reached after twice as many.
    responses = [await attempt((a, b)[i % 2]) for i in range(LOGIN_IP_LIMIT + 2)]
    statuses = [r.status_code for r in responses]
    assert statuses == [401] * LOGIN_IP_LIMIT + [429, 429]
    for refused in responses[LOGIN_IP_LIMIT:]:
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-limit"] == str(LOGIN_IP_LIMIT)
    # The limit is the forwarded client's, not the proxy's: another client still gets in.
    assert (await attempt(a, forwarded_client())).status_code == 401
    assert (await attempt(b, forwarded_client())).status_code == 401


async def test_lockout_counts_failures_on_every_instance(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    user = await register(a, f"lockout-{uuid.uuid4().hex[:12]}@example.com")
    wrong = {"email": user["email"], "password": "not the password"}
    right = {"email": user["email"], "password": PASSWORD}
    instances = (a, b)

    async def fail(i: int) -> None:
        # Each failure from another address: the lockout guards the account, whoever asks.
        response = await instances[i % 2].post(LOGIN, json=wrong, headers=forwarded_client())
        assert response.status_code == 401, response.text

    # One failure short of the threshold, the account still signs in (which forgets them).
    for i in range(LOCKOUT_THRESHOLD - 1):
        await fail(i)
    ok = await instances[LOCKOUT_THRESHOLD % 2].post(LOGIN, json=right, headers=forwarded_client())
    assert ok.status_code == 200, ok.text

    # At the threshold, spread over both instances, the account is locked on both.
    for i in range(LOCKOUT_THRESHOLD):
        await fail(i)
    for instance in instances:
        locked = await instance.post(LOGIN, json=right, headers=forwarded_client())
        assert locked.status_code == 429, locked.text
        assert locked.headers["content-type"] == PROBLEM
        assert locked.json()["error"] == "rate_limited"
        assert int(locked.headers["retry-after"]) >= 1


async def test_profile_change_on_a_is_served_by_b_within_a_second(
    a: httpx.AsyncClient, b: httpx.AsyncClient
) -> None:
    user = await register(a)
    tokens = await login(a, user["email"])
    for _ in range(2):  # the second read is served from B's in-process tier
        before = await b.get(ME, headers=bearer(tokens))
        assert before.status_code == 200
        assert before.json()["full_name"] == ""

    new_name = f"Renamed {uuid.uuid4().hex[:6]}"
    patched = await a.patch(ME, json={"full_name": new_name}, headers=bearer(tokens))
    assert patched.status_code == 200, patched.text

    async def b_serves_new_name() -> bool:
        response = await b.get(ME, headers=bearer(tokens))
        assert response.status_code == 200
        return bool(response.json()["full_name"] == new_name)

    assert await seconds_until(b_serves_new_name) < 1.0
