"""The one Redis client factory of every service (redis.asyncio with hiredis).

One server or a Redis Cluster (``RedisSettings.cluster``): the rest of the code takes an
:data:`AnyRedis` and only uses what both clients do the same way. In a cluster every Lua
script and every MULTI touches keys of one hash slot; the modules that need several keys
together give them a shared hash tag (the part of a key between the first ``{`` and ``}``).
"""

from __future__ import annotations

import contextlib
from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.settings import ServiceSettings

#: A client of one Redis server or of a Redis Cluster.
AnyRedis: TypeAlias = Redis | RedisCluster

#: What a Redis call raises when the server cannot answer. The cluster client raises
#: ``RedisClusterException``, which is not a ``RedisError``, when no node can be reached
#: or a slot has no owner: code that degrades on Redis errors catches both.
REDIS_ERRORS = (RedisError, RedisClusterException)


def create_redis(settings: ServiceSettings, url: str | None = None) -> AnyRedis:
    """A pooled client with timeouts, jittered retries, health checks and a client name.

    ``url`` defaults to ``settings.redis.url``; the ``serve`` command fills that in with
    the embedded server's socket when nothing is configured. With ``settings.redis.cluster``
    the URL names any node of a Redis Cluster and a cluster client is returned.
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
    common = {
        "socket_timeout": cfg.socket_timeout_s,
        "socket_connect_timeout": cfg.connect_timeout_s,
        "retry": retry,
        "health_check_interval": cfg.health_check_interval_s,
        "client_name": f"{settings.environment.value}.{settings.service_name}",
        "max_connections": cfg.max_connections,
        "decode_responses": True,
    }
    if cfg.cluster:
        # One pool per node, of max_connections each. The cluster client has no blocking
        # pool: past the limit a command fails with MaxConnectionsError (a ConnectionError).
        return RedisCluster.from_url(url, **common)
    # A blocking pool: under a burst, requests wait (up to the socket timeout) for a free
    # connection instead of failing at once with MaxConnectionsError.
    pool = BlockingConnectionPool.from_url(url, timeout=cfg.socket_timeout_s, **common)
    return Redis.from_pool(pool)


async def discover(client: AnyRedis) -> None:
    """Learn a cluster's nodes and slots now, before concurrent use (no-op for one server).

    redis-py 8.1's cluster client discovers the cluster on first use; when many commands
    arrive together on a fresh client, that discovery races with their connection set-up
    and some fail (ConnectionError, even AttributeError). Discovering once at start-up
    avoids it. An unreachable cluster is not an error here: the client tries again on
    first use, as a standalone client connects on first use.
    """
    if isinstance(client, RedisCluster):
        with contextlib.suppress(*REDIS_ERRORS, OSError):
            await client.initialize()


async def ping(client: AnyRedis) -> None:
    """``PING`` the server, or every primary of a cluster (each owns a share of the keys)."""
    if isinstance(client, RedisCluster):
        await client.execute_command("PING", target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


def key(settings: ServiceSettings, entity: str, ident: object, *, version: int = 1) -> str:
    """A namespaced key ``{prefix}{service}:{entity}:v{version}:{ident}``."""
    return f"{settings.redis.key_prefix}{settings.service_name}:{entity}:v{version}:{ident}"
