"""GCRA limits in Redis, trusted-proxy client addresses, and the global API limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from servicekit.app import create_app
from servicekit.http.client_ip import client_ip, parse_networks
from servicekit.ratelimit.limiter import RateLimited, RateLimiter, RateLimitUnavailable
from servicekit.redis import AnyRedis, create_redis
from servicekit.redis.keys import KeySpace
from servicekit.settings import HttpSettings, RateLimitSettings, RuleSettings, ServiceSettings
from servicekit.testing import app_client

from .utils.items import items_router


def _limiter(redis: AnyRedis, settings: ServiceSettings, **rules: RuleSettings) -> RateLimiter:
    return RateLimiter(redis, rules, keys=KeySpace("kit", settings.redis.key_prefix))


@pytest.mark.integration
class TestRateLimiter:
    async def test_allows_the_limit_then_refuses_with_headers(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        limiter = _limiter(redis_client, test_settings, r=RuleSettings(limit=3, period_s=60))
        remaining = [(await limiter.check([("r", "a")]))[0].remaining for _ in range(3)]
        assert remaining == [2, 1, 0]
        with pytest.raises(RateLimited) as refused:
            await limiter.check([("r", "a")])
        headers = refused.value.headers
        assert headers["RateLimit-Limit"] == "3"
        assert headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(headers["Retry-After"]) <= 20  # one slot frees after 60/3 s
        assert int(headers["RateLimit-Reset"]) <= 60
        # Another identity has its own bucket.
        assert (await limiter.check([("r", "b")]))[0].allowed

    async def test_concurrent_requests_never_exceed_the_limit(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        limiter = _limiter(redis_client, test_settings, r=RuleSettings(limit=10, period_s=60))

        async def attempt() -> bool:
            try:
                await limiter.check([("r", "same")])
            except RateLimited:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt() for _ in range(40)))
        assert sum(outcomes) == 10

    async def test_each_check_touches_one_hash_slot(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        limiter = _limiter(redis_client, test_settings)
        key = limiter.key("login_account", "someone@example.com")
        assert "someone@example.com" not in key  # identities are digested
        assert key.count("{") == 1
        assert key.endswith("}")

    async def test_redis_down_fails_open_or_closed_per_rule(
        self, test_settings: ServiceSettings
    ) -> None:
        dead = create_redis(test_settings, "redis://127.0.0.1:1/0")  # nothing listens there
        rules = {
            "open": RuleSettings(limit=1, period_s=60),
            "closed": RuleSettings(limit=1, period_s=60, fail_closed=True),
        }
        limiter = RateLimiter(dead, rules, keys=KeySpace("kit"))
        assert await limiter.check([("open", "x")]) == []
        with pytest.raises(RateLimitUnavailable):
            await limiter.check([("closed", "x")])
        await dead.aclose()


@pytest.mark.unit
class TestClientIp:
    def _scope(self, peer: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
        return {"type": "http", "client": (peer, 1234), "headers": headers}

    def test_untrusted_peer_cannot_spoof(self) -> None:
        scope = self._scope("203.0.113.9", [(b"x-forwarded-for", b"1.2.3.4")])
        assert client_ip(scope, parse_networks(["10.0.0.0/8"])) == "203.0.113.9"
        assert client_ip(scope, []) == "203.0.113.9"

    def test_trusted_proxy_chain_is_walked_from_the_right(self) -> None:
        trusted = parse_networks(["10.0.0.0/8"])
        scope = self._scope("10.0.0.2", [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.0.0.5")])
        # 6.6.6.6 was written by the client itself; 198.51.100.7 is what our proxy saw.
        assert client_ip(scope, trusted) == "198.51.100.7"

    def test_forwarded_header(self) -> None:
        trusted = parse_networks(["127.0.0.1"])
        scope = self._scope(
            "127.0.0.1", [(b"forwarded", b'for="[2001:db8::1]:443";proto=https, for=127.0.0.1')]
        )
        assert client_ip(scope, trusted) == "2001:db8::1"

    def test_garbage_in_the_chain_stops_trust(self) -> None:
        trusted = parse_networks(["127.0.0.1"])
        scope = self._scope("127.0.0.1", [(b"x-forwarded-for", b"not-an-ip")])
        assert client_ip(scope, trusted) == "127.0.0.1"


@pytest.fixture
async def limited_client(
    test_settings: ServiceSettings, kit_tables: None, redis_client: AnyRedis
) -> AsyncIterator[httpx.AsyncClient]:
    settings = test_settings.model_copy(
        update={
            "rate_limit": RateLimitSettings(
                rules={"global_ip": RuleSettings(limit=3, period_s=60)}
            ),
            "http": HttpSettings(trusted_proxies=["127.0.0.1"]),
        }
    )
    app: FastAPI = create_app(settings, [items_router()])
    async with app_client(app) as client:
        yield client


@pytest.mark.integration
class TestGlobalLimit:
    async def test_api_prefix_is_limited_per_client(
        self, limited_client: httpx.AsyncClient
    ) -> None:
        # Only paths under /api/ count; /items and /health are outside it.
        for _ in range(5):
            assert (await limited_client.get("/health/live")).status_code == 200
        responses = [
            await limited_client.get("/api/x", headers={"x-forwarded-for": "192.0.2.1"})
            for _ in range(4)
        ]
        assert [r.status_code for r in responses] == [404, 404, 404, 429]
        assert responses[0].headers["ratelimit-limit"] == "3"
        assert responses[2].headers["ratelimit-remaining"] == "0"
        refused = responses[3]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["error"] == "rate_limited"
        assert "retry-after" in refused.headers
        # Through the trusted proxy, another client address has its own budget.
        other = await limited_client.get("/api/x", headers={"x-forwarded-for": "192.0.2.2"})
        assert other.status_code == 404


@pytest.mark.integration
class TestLeases:
    async def test_leases_never_admit_more_than_the_limit(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        rule = RuleSettings(limit=10, period_s=600, lease=4)
        instances = [_limiter(redis_client, test_settings, r=rule) for _ in range(2)]
        admitted = 0
        for attempt in range(30):
            try:
                await instances[attempt % 2].check([("r", "busy")])
            except RateLimited:
                continue
            admitted += 1
        assert admitted <= 10
        assert admitted >= 10 - 2 * (rule.lease - 1)  # unused slots held by an instance

    async def test_a_lease_saves_round_trips(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        limiter = _limiter(
            redis_client, test_settings, r=RuleSettings(limit=1000, period_s=60, lease=50)
        )
        await limiter.check([("r", "ip")])
        await redis_client.delete(limiter.key("r", "ip"))  # Redis forgets: the lease holds
        for _ in range(49):
            await limiter.check([("r", "ip")])
        assert not await redis_client.exists(limiter.key("r", "ip"))
        await limiter.check([("r", "ip")])  # the lease is spent: back to Redis
        assert await redis_client.exists(limiter.key("r", "ip"))

    async def test_concurrent_requests_share_one_lease_refill(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        rule = RuleSettings(limit=1000, period_s=600, lease=50)
        limiter = _limiter(redis_client, test_settings, r=rule)
        await asyncio.gather(*(limiter.check([("r", "burst")]) for _ in range(200)))
        # Read what Redis counted through an exact (lease 1) limiter on the same bucket.
        exact = _limiter(redis_client, test_settings, r=rule.model_copy(update={"lease": 1}))
        [probe] = await exact.check([("r", "burst")])
        taken = rule.limit - probe.remaining - 1
        # 200 requests in leases of 50: four refills, not one per concurrent request.
        assert taken == 200

    async def test_refusals_reach_queued_requests_and_nothing_is_left_behind(
        self, redis_client: AnyRedis, test_settings: ServiceSettings
    ) -> None:
        rule = RuleSettings(limit=3, period_s=600, lease=5)  # a lease bigger than the limit
        limiter = _limiter(redis_client, test_settings, r=rule)
        outcomes = await asyncio.gather(
            *(limiter.check([("r", "full")]) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(o, RateLimited) for o in outcomes[3:])
        assert not limiter._queues  # nothing left behind once the requests are answered
