"""Limits on authentication routes, the account lockout, and trusted proxies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from servicekit.db import AsyncSession
from servicekit.ratelimit.lockout import LockoutSettings
from servicekit.redis import AnyRedis
from servicekit.settings import RuleSettings
from servicekit.testing import app_client, override_db_session
from user_service.config import UserServiceSettings, default_rate_limits
from user_service.main import create_app

from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def limited(
    settings: UserServiceSettings, db_session: AsyncSession, redis_client: AnyRedis
) -> ClientFactory:
    """Build a client whose app has rate limiting on, with some rules overridden.

    Each app counts under its own key prefix (cleaned up with the run's keys by
    ``redis_client``), so no test inherits another's budget.
    """

    @asynccontextmanager
    async def build(
        *,
        trusted_proxies: list[str] | None = None,
        lockout: LockoutSettings | None = None,
        **rules: RuleSettings,
    ) -> AsyncIterator[httpx.AsyncClient]:
        limits = default_rate_limits()
        limits.rules.update(rules)
        prefix = f"{settings.redis.key_prefix}{uuid.uuid4().hex[:8]}:"
        updates: dict[str, Any] = {
            "rate_limit": limits,
            "redis": settings.redis.model_copy(update={"key_prefix": prefix}),
            "http": settings.http.model_copy(update={"trusted_proxies": trusted_proxies or []}),
        }
        if lockout is not None:
            updates["lockout"] = lockout
        app = create_app(settings.model_copy(update=updates))
        override_db_session(app, db_session)
        async with app_client(app) as client:
            yield client

    return build


async def _login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


class TestAuthLimits:
    async def test_login_per_ip_answers_429_with_headers_at_the_limit(
        self, limited: ClientFactory
    ) -> None:
        async with limited(login_ip=RuleSettings(limit=2, period_s=60, fail_closed=True)) as c:
            user = await register(c)
            first = await _login(c, user["email"])
            second = await _login(c, user["email"])
            third = await _login(c, user["email"])
        assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
        assert second.headers["ratelimit-remaining"] == "0"
        assert third.headers["content-type"] == "application/problem+json"
        assert third.json()["error"] == "rate_limited"
        assert int(third.headers["retry-after"]) >= 1
        assert third.headers["ratelimit-limit"] == "2"

    async def test_login_per_account_counts_unknown_accounts_too(
        self, limited: ClientFactory
    ) -> None:
        async with limited(
            login_account=RuleSettings(limit=2, period_s=60, fail_closed=True),
            lockout=LockoutSettings(enabled=False),
        ) as c:
            user = await register(c)
            known = [await _login(c, user["email"], "wrong password") for _ in range(3)]
            unknown = [await _login(c, "ghost@example.com", "wrong password") for _ in range(3)]
        assert [r.status_code for r in known] == [401, 401, 429]
        assert [r.status_code for r in unknown] == [401, 401, 429]

    async def test_registration_per_ip(self, limited: ClientFactory) -> None:
        async with limited(register_ip=RuleSettings(limit=1, period_s=3600)) as c:
            await register(c)
            response = await c.post(
                "/api/v1/users", json={"email": "second@example.com", "password": PASSWORD}
            )
        assert response.status_code == 429

    async def test_refresh_per_session(self, limited: ClientFactory) -> None:
        async with limited(refresh_session=RuleSettings(limit=2, period_s=60)) as c:
            user = await register(c)
            tokens = (await _login(c, user["email"])).json()
            statuses = []
            for _ in range(3):
                response = await c.post(
                    "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    tokens = response.json()
        assert statuses == [200, 200, 429]

    async def test_reset_requests_per_email(self, limited: ClientFactory) -> None:
        async with limited(password_reset_email=RuleSettings(limit=1, period_s=3600)) as c:
            body = {"email": "anyone@example.com"}
            first = await c.post("/api/v1/auth/password-reset/request", json=body)
            second = await c.post("/api/v1/auth/password-reset/request", json=body)
        assert (first.status_code, second.status_code) == (202, 429)


class TestTrustedProxies:
    async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
        self, limited: ClientFactory
    ) -> None:
        async with limited(login_ip=RuleSettings(limit=2, period_s=60)) as c:
            statuses = [
                (
                    await _login(
                        c, "x@example.com", "nope", **{"x-forwarded-for": f"198.51.100.{i}"}
                    )
                ).status_code
                for i in range(3)
            ]
        assert statuses == [401, 401, 429]

    async def test_a_trusted_proxy_separates_clients(self, limited: ClientFactory) -> None:
        async with limited(
            trusted_proxies=["127.0.0.1"], login_ip=RuleSettings(limit=2, period_s=60)
        ) as c:
            statuses = [
                (
                    await _login(
                        c, "x@example.com", "nope", **{"x-forwarded-for": f"198.51.100.{i}"}
                    )
                ).status_code
                for i in range(3)
            ]
            user = await register(c)
            tokens = (await _login(c, user["email"], **{"x-forwarded-for": "198.51.100.77"})).json()
            sessions = await c.get(
                "/api/v1/users/me/sessions",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
        assert statuses == [401, 401, 401]
        assert sessions.json()[0]["ip"] == "198.51.100.77"


class TestLockout:
    async def test_escalates_and_resets_on_success(self, limited: ClientFactory) -> None:
        lockout = LockoutSettings(threshold=2, window_s=60, base_s=1, cap_s=4)
        async with limited(lockout=lockout) as c:
            user = await register(c)
            email = user["email"]
            assert [(await _login(c, email, "bad")).status_code for _ in range(2)] == [401, 401]
            locked = await _login(c, email)  # even the right password waits
            assert locked.status_code == 429
            assert locked.json()["error"] == "rate_limited"
            assert locked.headers["retry-after"] == "1"
            await asyncio.sleep(1.1)
            assert [(await _login(c, email, "bad")).status_code for _ in range(2)] == [401, 401]
            again = await _login(c, email)
            assert again.status_code == 429
            assert again.headers["retry-after"] == "2"  # doubled
            await asyncio.sleep(2.1)
            assert (await _login(c, email)).status_code == 200  # success resets the count
            assert (await _login(c, email, "bad")).status_code == 401
            assert (await _login(c, email)).status_code == 200

    async def test_unknown_accounts_lock_the_same_way(self, limited: ClientFactory) -> None:
        lockout = LockoutSettings(threshold=2, window_s=60, base_s=60, cap_s=60)
        async with limited(lockout=lockout) as c:
            user = await register(c)
            for email in (user["email"], "nobody-here@example.com"):
                for _ in range(2):
                    await _login(c, email, "bad")
            known = await _login(c, user["email"], "bad")
            unknown = await _login(c, "nobody-here@example.com", "bad")
        assert known.status_code == unknown.status_code == 429
        strip = {"request_id"}
        assert {k: v for k, v in known.json().items() if k not in strip} == {
            k: v for k, v in unknown.json().items() if k not in strip
        }
