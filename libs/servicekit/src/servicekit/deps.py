"""Dependencies every service shares; services alias them in their own ``deps.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from servicekit.context import current_request
from servicekit.db.session import (
    AsyncSession,
    ConnectionSource,
    get_db_session,
    get_read_connection_source,
)
from servicekit.redis.client import AnyRedis
from servicekit.settings import ServiceSettings
from servicekit.state import app_state

T = TypeVar("T")


def component(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency returning the start-up component of type ``kind`` (a service, say).

    Alias it once per type: ``Users = Annotated[UserService, Depends(component(UserService))]``.
    """

    async def dependency(request: Request) -> T:
        return app_state(request).get(kind)

    dependency.__name__ = f"get_{kind.__name__}"
    return dependency


async def get_redis(request: Request) -> AnyRedis:
    """The Redis client built in the lifespan."""
    return app_state(request).redis


async def get_app_settings(request: Request) -> ServiceSettings:
    """The settings the app was built with."""
    return app_state(request).settings


def client_address(request: Request) -> str:
    """The client's address as resolved by the chassis middleware (trusted proxies)."""
    context = current_request()
    if context is not None:
        return context.client_ip
    return request.client.host if request.client else "unknown"


async def check_rate_limits(request: Request, checks: Sequence[tuple[str, str]]) -> None:
    """Consume ``(rule, identity)`` pairs; 429/503 as an ``AppError`` when refused."""
    await app_state(request).rate_limiter.check(checks)


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
