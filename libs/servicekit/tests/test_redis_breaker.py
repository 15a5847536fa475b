"""The Redis circuit breaker against a real hung server (the test's own, SIGSTOPped).

After repeated timeouts every call fails at once for the cool-down, then a background probe
decides (no caller waits for it); the callers' degraded paths (cache fail-open, limiter
fail-open or closed) behave as for any outage, only without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.http.health import Readiness, redis_check
from servicekit.ratelimit.limiter import RateLimiter, RateLimitUnavailable
from servicekit.redis import AnyRedis, create_redis
from servicekit.redis.breaker import BreakerConnectionPool, RedisBreaker, RedisCircuitOpen
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.redis.keys import KeySpace
from servicekit.settings import RuleSettings, ServiceSettings
from servicekit.testing.process import free_port

from .utils.cache import Thing, make_cache

pytestmark = pytest.mark.integration

COOLDOWN_S = 0.5
#: What the breaker makes a refused call cost at most (measured: well under 1 ms).
FAST_S = 0.05


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path, port=free_port())
    try:
        redis.start()
        yield redis
    finally:
        if redis.process is not None:
            redis.process.send_signal(signal.SIGCONT)
        redis.stop()


@contextmanager
def frozen(server: EmbeddedRedis) -> Iterator[None]:
    """SIGSTOP: connects still succeed (the kernel queues them) but nothing is answered."""
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


@pytest.fixture
async def client(test_settings: ServiceSettings, server: EmbeddedRedis) -> AsyncIterator[AnyRedis]:
    redis = test_settings.redis.model_copy(
        update={
            "socket_timeout_s": 0.2,
            "connect_timeout_s": 0.2,
            "retries": 1,
            "breaker_failures": 3,
            "breaker_cooldown_s": COOLDOWN_S,
            "key_prefix": "",
        }
    )
    client = create_redis(test_settings.model_copy(update={"redis": redis}), server.url)
    assert await client.ping() is True
    yield client
    await client.aclose()


def _breaker(client: AnyRedis) -> RedisBreaker:
    assert isinstance(client, Redis)
    pool = client.connection_pool
    assert isinstance(pool, BreakerConnectionPool)
    assert pool.breaker is not None
    return pool.breaker


async def _settles(client: AnyRedis, state: str, within_s: float = 2.0) -> bool:
    """Whether the breaker reaches ``state`` within ``within_s`` (the background probe)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _breaker(client).state == state:
            return True
        await asyncio.sleep(0.01)
    return False


async def _open(client: AnyRedis) -> None:
    """Calls that time out until the circuit opens (2 commands x 2 tries >= 3 failures)."""
    results = await asyncio.gather(*(client.ping() for _ in range(4)), return_exceptions=True)
    assert all(isinstance(r, RedisError) for r in results), results
    assert _breaker(client).state == "open"


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class TestCircuit:
    async def test_repeated_timeouts_open_it_and_calls_then_fail_at_once(
        self, client: AnyRedis, server: EmbeddedRedis
    ) -> None:
        opened = _sample("redis_circuit_opened_total")
        with frozen(server):
            await _open(client)
            rejected = _sample("redis_circuit_rejections_total")
            started = time.monotonic()
            for _ in range(20):
                with pytest.raises(RedisCircuitOpen):
                    await client.get("k")
            assert time.monotonic() - started < FAST_S * 20
            readiness = Readiness(checks={"redis": redis_check(client)})
            assert await readiness.run_checks() == {"redis": "error: RedisCircuitOpen"}
        assert _sample("redis_circuit_opened_total") == opened + 1
        assert _sample("redis_circuit_rejections_total") >= rejected + 20
        assert _sample("redis_circuit_state") == 2

    async def test_after_the_cooldown_one_probe_closes_it(
        self, client: AnyRedis, server: EmbeddedRedis
    ) -> None:
        with frozen(server):
            await _open(client)
        with pytest.raises(RedisCircuitOpen):  # the server is back, but the circuit still open
            await client.ping()
        await asyncio.sleep(COOLDOWN_S + 0.1)
        with pytest.raises(RedisCircuitOpen):  # refused, and the background probe starts
            await client.ping()
        assert await _settles(client, "closed")
        assert await client.ping() is True
        assert _sample("redis_circuit_state") == 0

    async def test_half_open_probes_in_the_background_and_a_failed_probe_reopens_it(
        self, client: AnyRedis, server: EmbeddedRedis
    ) -> None:
        """No caller waits out the probe: what queues behind one caller would wait too."""
        with frozen(server):
            await _open(client)
            await asyncio.sleep(COOLDOWN_S + 0.1)
            started = time.monotonic()
            for _ in range(5):  # the first starts the probe (a PING); none waits for it
                with pytest.raises(RedisCircuitOpen):
                    await client.get("k")
            assert time.monotonic() - started < FAST_S * 5
            assert _breaker(client).state == "half_open"  # the probe is out
            assert await _settles(client, "open")  # its timeout reopened the circuit

    async def test_without_a_probe_function_the_first_call_is_the_probe(self) -> None:
        breaker = RedisBreaker(failures=1, cooldown_s=COOLDOWN_S)

        async def hung() -> None:
            raise RedisTimeoutError("no answer")

        with pytest.raises(RedisTimeoutError):
            await breaker.guard(hung)
        assert breaker.state == "open"
        await asyncio.sleep(COOLDOWN_S + 0.1)

        async def answer() -> str:
            return "PONG"

        assert await breaker.guard(answer) == "PONG"
        assert breaker.state == "closed"

    async def test_a_subscriber_idle_read_does_not_keep_it_closed(
        self, client: AnyRedis, server: EmbeddedRedis
    ) -> None:
        # A subscriber's read that times out without a message returns None, from a hung
        # server as from a quiet one: it must not count as a success (the change feed).
        pubsub = client.pubsub()
        await pubsub.subscribe("quiet")
        stop = asyncio.Event()

        async def listen() -> None:
            while not stop.is_set():
                with contextlib.suppress(RedisError):  # refused too, once the circuit opens
                    await pubsub.get_message(timeout=0.05)
                await asyncio.sleep(0)

        listener = asyncio.create_task(listen())
        try:
            with frozen(server):
                for _ in range(3):  # one after the other, with idle reads in between
                    with pytest.raises(RedisError):
                        await client.ping()
                assert _breaker(client).state == "open"
        finally:
            stop.set()
            await listener
            await pubsub.aclose()  # type: ignore[no-untyped-call]


class TestDegradedPaths:
    async def test_the_cache_reads_through_without_waiting(
        self, client: AnyRedis, server: EmbeddedRedis, test_settings: ServiceSettings
    ) -> None:
        cache = make_cache(client, test_settings, "breaker")

        async def load() -> Thing:
            return Thing(id=1, name="from the database")

        with frozen(server):
            await _open(client)
            started = time.monotonic()
            assert await cache.get_or_load(1, load) == Thing(id=1, name="from the database")
            assert time.monotonic() - started < FAST_S

    async def test_the_limiter_fails_open_or_closed_per_rule_without_waiting(
        self, client: AnyRedis, server: EmbeddedRedis
    ) -> None:
        limiter = RateLimiter(
            client,
            {
                "open": RuleSettings(limit=10, period_s=1),
                "closed": RuleSettings(limit=10, period_s=1, fail_closed=True),
            },
            keys=KeySpace("kit", ""),
        )
        with frozen(server):
            await _open(client)
            started = time.monotonic()
            assert await limiter.check([("open", "who")]) is not None
            with pytest.raises(RateLimitUnavailable):
                await limiter.check([("closed", "who")])
            assert time.monotonic() - started < FAST_S * 2
