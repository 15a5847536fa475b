"""A Redis Cluster node killed and restarted under traffic: every failure is a Redis error.

The callers degrade on Redis errors (fail open or closed, per route); anything else would
escape them as a 500. Runs on a cluster of its own, in ``make scale-test``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicekit.redis import REDIS_ERRORS, create_redis, discover
from servicekit.settings import RedisSettings, ServiceSettings
from servicekit.testing.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.scale

WORKERS = 40
RUN_S = 9.0
KILL_AT_S, RESTART_AT_S = 2.0, 4.0


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path / "cluster")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_a_node_restart_under_load_fails_only_with_redis_errors(
    test_settings: ServiceSettings, own_cluster: LocalRedisCluster
) -> None:
    redis = RedisSettings(
        url=own_cluster.url, cluster=True, max_connections=16, socket_timeout_s=0.5,
        connect_timeout_s=0.5, health_check_interval_s=0,
    )  # fmt: skip
    client = create_redis(test_settings.model_copy(update={"redis": redis}))
    await discover(client)
    outcomes: Counter[str] = Counter()
    late_successes = 0
    started = time.monotonic()

    async def worker(w: int) -> None:
        nonlocal late_successes
        i = 0
        while (elapsed := time.monotonic() - started) < RUN_S:
            i += 1
            try:
                await client.set(f"fault:{w}:{i}", 1, ex=60)
            except REDIS_ERRORS as exc:
                outcomes[type(exc).__name__] += 1
                await asyncio.sleep(0.01)
            except Exception as exc:  # what this test looks for
                outcomes[f"not a Redis error: {type(exc).__name__}: {exc}"] += 1
            else:
                outcomes["ok"] += 1
                late_successes += elapsed > RESTART_AT_S + 3

    async def restart_a_node() -> None:
        await asyncio.sleep(KILL_AT_S)
        own_cluster.kill(1)
        await asyncio.sleep(RESTART_AT_S - KILL_AT_S)
        own_cluster.restart(1)

    try:
        await asyncio.gather(restart_a_node(), *(worker(w) for w in range(WORKERS)))
    finally:
        await client.aclose()
    assert not [k for k in outcomes if k.startswith("not a Redis error")], outcomes
    assert late_successes > 0, outcomes  # recovered without a new client
