"""The one Redis client factory of every service (redis.asyncio with hiredis)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.settings import ServiceSettings


def create_redis(settings: ServiceSettings, url: str | None = None) -> Redis:
    """A pooled client with timeouts, jittered retries, health checks and a client name.

    ``url`` defaults to ``settings.redis.url``; the ``serve`` command fills that in with
    the embedded server's socket when nothing is configured.
    """
    cfg = settings.redis
    url = url or cfg.url
    if not url:
        raise RuntimeError("no Redis URL: set REDIS_URL or start the embedded server")
    retry = Retry(
        ExponentialWithJitterBackoff(cap=cfg.backoff_cap_s, base=cfg.backoff_base_s),
        cfg.retries,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )
    # A blocking pool: under a burst, requests wait (up to the socket timeout) for a free
    # connection instead of failing at once with MaxConnectionsError.
    pool = BlockingConnectionPool.from_url(
        url,
        socket_timeout=cfg.socket_timeout_s,
        socket_connect_timeout=cfg.connect_timeout_s,
        retry=retry,
        health_check_interval=cfg.health_check_interval_s,
        client_name=f"{settings.environment.value}.{settings.service_name}",
        max_connections=cfg.max_connections,
        timeout=cfg.socket_timeout_s,
        decode_responses=True,
    )
    return Redis.from_pool(pool)


def key(settings: ServiceSettings, entity: str, ident: object, *, version: int = 1) -> str:
    """A namespaced key ``{prefix}{service}:{entity}:v{version}:{ident}``."""
    return f"{settings.redis.key_prefix}{settings.service_name}:{entity}:v{version}:{ident}"
