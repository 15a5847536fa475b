"""The timeouts and retries of the Redis client every service builds, against real sockets.

``servicekit.redis.create_redis`` with the documented defaults: a command that gets no
answer is tried three times (``REDIS__RETRIES`` 2) with a 1 s socket timeout each, a connect
that gets no answer gives up after 1 s per attempt, and the jittered waits between attempts
stay within the 50 ms-base exponential backoff. The servers are real: a Redis of the test's
own on a loopback TCP port (frozen with SIGSTOP to hang it), and a port whose accept queue
is full (a connect that gets no answer).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from servicekit.redis import AnyRedis, create_redis
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.settings import RedisSettings, ServiceSettings
from servicekit.testing.process import free_port

pytestmark = pytest.mark.integration

#: The policy the operations guide documents, which these tests hold the defaults to.
DOCUMENTED = {
    "socket_timeout_s": 0.25,
    "connect_timeout_s": 1.0,
    "retries": 2,
    "backoff_base_s": 0.05,
    "backoff_cap_s": 0.5,
}
#: Three tries of the socket timeout (0.25 s) or the connect timeout (1 s), plus at most
#: 0.1 + 0.2 s of waits, plus slack for a busy machine.
THREE_COMMAND_TRIES_S = (3 * 0.25, 3 * 0.25 + 0.3 + 0.5)
THREE_CONNECT_TRIES_S = (3 * 1.0, 3 * 1.0 + 0.3 + 0.5)


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose accept queue is full.

    The kernel drops further SYNs, so a connect gets no answer at all (a firewalled or
    vanished host), unlike a refused one.
    """
    with ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(16):  # the queue holds one or two connections; bounded
            filler = stack.enter_context(socket.socket())
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # this SYN was dropped: the queue is full
        else:
            raise AssertionError("the accept queue never filled up")
        yield port


@contextmanager
def hung(server: EmbeddedRedis) -> Iterator[None]:
    """The server frozen (SIGSTOP) for the block, as with a hung server or a partition.

    Connects still succeed, the kernel queues them, but nothing is read or answered.
    """
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


@pytest.fixture
def tcp_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own on a free loopback port, as production reaches one."""
    server = EmbeddedRedis(tmp_path, port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(test_settings: ServiceSettings) -> ServiceSettings:
    """The run's settings with the default Redis client policy (one server, no cluster)."""
    defaults = RedisSettings()
    assert defaults.model_dump(include=set(DOCUMENTED)) == DOCUMENTED
    return test_settings.model_copy(update={"redis": defaults})


async def connections_received(client: AnyRedis, at_least: int) -> int:
    """The server's count of connections, once it has taken at least ``at_least``.

    A resumed server accepts the connections queued while it was frozen in one go.
    """
    deadline = time.monotonic() + 5
    while True:
        received = int((await client.info("stats"))["total_connections_received"])
        if received >= at_least or time.monotonic() > deadline:
            return received
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("connected", "new_connections"),
    # On an open connection: that try, then two retries (REDIS__RETRIES = 2) on new
    # connections. On a fresh client every try opens one (the handshake never ends). With
    # redis-py 8.1's idle health check on, the second case took 3 x 3 tries (9.7 s).
    [(True, 2), (False, 3)],
    ids=["on-an-open-connection", "on-a-new-connection"],
)
async def test_a_command_to_a_hung_server_is_tried_three_times_of_its_socket_timeout(
    settings: ServiceSettings, tcp_redis: EmbeddedRedis, connected: bool, new_connections: int
) -> None:
    client = create_redis(settings, tcp_redis.url)
    observer = create_redis(settings, tcp_redis.url)
    try:
        if connected:
            assert await client.ping() is True  # an open, healthy connection
        before = await connections_received(observer, 0)
        with hung(tcp_redis):
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await client.ping()
            elapsed = time.monotonic() - started
        tries = await connections_received(observer, before + new_connections) - before
    finally:
        await client.aclose()
        await observer.aclose()
    assert tries == new_connections
    low, high = THREE_COMMAND_TRIES_S
    assert low <= elapsed < high, elapsed


async def test_a_connect_without_an_answer_times_out_after_1s_per_try(
    settings: ServiceSettings,
) -> None:
    with unanswered_port() as port:
        client = create_redis(settings, f"redis://127.0.0.1:{port}/0")
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="connecting"):
                await client.ping()
            elapsed = time.monotonic() - started
        finally:
            await client.aclose()
    # Three connects (REDIS__RETRIES = 2), each abandoned at the 1 s connect timeout.
    low, high = THREE_CONNECT_TRIES_S
    assert low <= elapsed < high, elapsed


async def test_retries_wait_a_jittered_exponential_backoff(
    settings: ServiceSettings, tcp_redis: EmbeddedRedis
) -> None:
    # Ten failing calls in a row would open the circuit (test_redis_breaker.py): off here.
    redis = settings.redis.model_copy(update={"breaker_failures": 0})
    client = create_redis(settings.model_copy(update={"redis": redis}), tcp_redis.url)
    try:
        assert await client.ping() is True
        tcp_redis.stop()  # every connect is refused at once
        took = []
        for _ in range(10):
            started = time.monotonic()
            with pytest.raises(RedisConnectionError):
                await client.ping()
            took.append(time.monotonic() - started)
    finally:
        await client.aclose()
    # Three tries, so two waits: uniform in [0, 0.05 * 2**1] and [0, 0.05 * 2**2] s (the
    # 0.5 s cap is not reached with two retries): 0.15 s on average, 0.3 s at most. Without
    # backoff each call would take about a millisecond; a fixed 0.5 s would exceed the bound.
    assert max(took) < 0.3 + 0.1, took
    assert 0.05 < statistics.mean(took) < 0.25, took
