"""The one Redis client factory of every service (redis.asyncio with hiredis).

One server or a Redis Cluster (``RedisSettings.cluster``): the rest of the code takes an
:data:`AnyRedis` and only uses what both clients do the same way. In a cluster every Lua
script and every MULTI touches keys of one hash slot; the modules that need several keys
together give them a shared hash tag (the part of a key between the first ``{`` and ``}``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.redis.breaker import BreakerConnectionPool, BreakerRetry, RedisBreaker

if TYPE_CHECKING:
    from servicekit.settings import ServiceSettings

#: A client of one Redis server or of a Redis Cluster.
AnyRedis: TypeAlias = Redis | RedisCluster

#: What a Redis call raises when the server cannot answer. The cluster client raises
#: ``RedisClusterException``, which is not a ``RedisError``, when no node can be reached
#: or a slot has no owner: code that degrades on Redis errors catches both.
REDIS_ERRORS = (RedisError, RedisClusterException)


#: Connections per node beyond the command bound, for what does not pass through
#: ``execute_command``: the change feed's pub/sub connection and the denylist's pipelines.
CLUSTER_POOL_HEADROOM = 8


class BoundedRedisCluster(RedisCluster):
    """A cluster client whose commands wait for a free connection, as a blocking pool does.

    redis-py's cluster client has no blocking pool: once a node's pool is full a command
    fails with ``MaxConnectionsError``, and the client treats that as a connection failure,
    closing the node's connections and rediscovering the cluster while other commands are
    using them. So at most ``max_in_flight`` commands run at once (none can need more than
    one connection per node), and a command that cannot start within ``wait_s`` fails with
    a Redis ``TimeoutError``, like a blocking pool's wait.

    When a node restarts under traffic, the client's rediscovery still closes connections
    that concurrent commands are writing to, and those fail with ``AttributeError``
    (redis-py 8.1). That is a lost connection, so it is raised as one, a Redis
    ``ConnectionError``: the callers' degraded paths handle it instead of a 500.
    """

    def __init__(
        self,
        *args: Any,
        max_in_flight: int,
        wait_s: float,
        breaker: RedisBreaker | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._wait_s = wait_s
        self._breaker = breaker

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Run one command once a slot is free (at once refused while the circuit is open)."""
        if self._breaker is not None:
            self._breaker.check()  # before waiting for a slot that hung commands hold
        try:
            async with asyncio.timeout(self._wait_s):
                await self._in_flight.acquire()
        except TimeoutError:
            raise RedisTimeoutError("no free Redis connection within the wait") from None
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            raise RedisConnectionError("connection closed during cluster rediscovery") from exc
        finally:
            self._in_flight.release()


def create_redis(settings: ServiceSettings, url: str | None = None) -> AnyRedis:
    """A pooled client with timeouts, jittered retries, a circuit breaker and a client name.

    ``url`` defaults to ``settings.redis.url``; the ``serve`` command fills that in with
    the embedded server's socket when nothing is configured. With ``settings.redis.cluster``
    the URL names any node of a Redis Cluster and a cluster client is returned.
    """
    cfg = settings.redis
    url = url or cfg.url
    if not url:
        raise RuntimeError("no Redis URL: set REDIS_URL or start the embedded server")
    breaker = (
        RedisBreaker(failures=cfg.breaker_failures, cooldown_s=cfg.breaker_cooldown_s)
        if cfg.breaker_failures
        else None
    )
    backoff = ExponentialWithJitterBackoff(cap=cfg.backoff_cap_s, base=cfg.backoff_base_s)
    errors = (RedisConnectionError, RedisTimeoutError)
    retry = (
        BreakerRetry(backoff, cfg.retries, supported_errors=errors, breaker=breaker)
        if breaker is not None
        else Retry(backoff, cfg.retries, supported_errors=errors)
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
        cluster = BoundedRedisCluster.from_url(
            url,
            max_in_flight=cfg.max_connections,
            wait_s=cfg.socket_timeout_s,
            breaker=breaker,
            **{**common, "max_connections": cfg.max_connections + CLUSTER_POOL_HEADROOM},
        )
        if breaker is not None:
            breaker.probe_with(cluster.ping)
        return cluster
    # A blocking pool: under a burst, requests wait (up to the socket timeout) for a free
    # connection instead of failing at once with MaxConnectionsError.
    pool = BreakerConnectionPool.from_url(url, timeout=cfg.socket_timeout_s, **common)
    pool.breaker = breaker
    client = Redis.from_pool(pool)
    if breaker is not None:
        breaker.probe_with(client.ping)
    return client


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
