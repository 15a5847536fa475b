"""Dependencies every service shares; services alias them in their own ``deps.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db.session import ConnectionSource, get_db_session, get_read_connection_source
from servicekit.http.rate_limits import CLIENT_IP, LIMITER, RESULTS
from servicekit.ratelimit.limiter import RateLimiter, RateLimitResult
from servicekit.redis.client import AnyRedis
from servicekit.settings import ServiceSettings


async def get_redis(request: Request) -> AnyRedis:
    """The Redis client built in the lifespan."""
    client: AnyRedis = request.state.redis
    return client


async def get_app_settings(request: Request) -> ServiceSettings:
    """The settings the app was built with."""
    settings: ServiceSettings = request.state.settings
    return settings


def client_address(request: Request) -> str:
    """The client's address as resolved by the rate-limit middleware (trusted proxies)."""
    address: str | None = getattr(request.state, CLIENT_IP, None)
    if address is None:
        address = request.client.host if request.client else "unknown"
    return address


async def check_rate_limits(request: Request, checks: Sequence[tuple[str, str]]) -> None:
    """Consume ``(rule, identity)`` pairs; 429/503 as an ``AppError`` when refused."""
    limiter: RateLimiter | None = getattr(request.state, LIMITER, None)
    if limiter is None:
        return
    results = await limiter.check(checks)
    recorded: list[RateLimitResult] | None = getattr(request.state, RESULTS, None)
    if recorded is not None:
        recorded.extend(results)


def rate_limit(*rules: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency applying ``rules`` to the client's address (``dependencies=[...]``)."""

    async def dependency(request: Request) -> None:
        ip = client_address(request)
        await check_rate_limits(request, [(rule, ip) for rule in rules])

    return dependency


#: One transaction per request, committed before the response is sent.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
RedisClient = Annotated[AnyRedis, Depends(get_redis)]
#: Opens read-only connections on demand (nothing is opened unless called).
ReadConnections = Annotated[ConnectionSource, Depends(get_read_connection_source)]
