"""Dependencies every service shares; services alias them in their own ``deps.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import get_db_session
from servicekit.settings import ServiceSettings


def get_redis(request: Request) -> Redis:
    """The Redis client built in the lifespan."""
    client: Redis = request.state.redis
    return client


def get_app_settings(request: Request) -> ServiceSettings:
    """The settings the app was built with."""
    settings: ServiceSettings = request.state.settings
    return settings


#: One transaction per request, committed before the response is sent.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
RedisClient = Annotated[Redis, Depends(get_redis)]
