"""Shared by the cache tests: a cached model, a controllable loader, metric reads and a cache.

The cache is on the run's Redis; the ``name`` and ``cache`` fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from pydantic import BaseModel

from servicekit.redis import AnyRedis
from servicekit.redis.cache import Cache
from servicekit.redis.keys import KeySpace
from servicekit.settings import ServiceSettings


class Thing(BaseModel):
    id: int
    name: str


class Loader:
    """A source of truth that counts its calls and can be held until released."""

    def __init__(self, value: Thing | None, *, hold: bool = False) -> None:
        self.value = value
        self.calls = 0
        #: The task that ran the first load (the single-flight leader).
        self.leader: asyncio.Task[object] | None = None
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self) -> Thing | None:
        self.calls += 1
        if self.leader is None:
            self.leader = asyncio.current_task()
        value = self.value  # what the source held when the read began
        self.started.set()
        await self.release.wait()
        return value


def events(name: str, result: str) -> float:
    """``cache_events_total`` for one cache and result, from the process registry."""
    value = REGISTRY.get_sample_value("cache_events_total", {"cache": name, "result": result})
    return value or 0.0


async def wait_until(condition: object, timeout_s: float = 3.0) -> None:
    """Poll a zero-argument callable until it is truthy (fails after ``timeout_s``)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def pending(cache: Cache[Thing]) -> bool:
    """``needs_repair``, read afresh (a function call, so mypy does not narrow it)."""
    return cache.needs_repair


def make_cache(
    redis: AnyRedis,
    settings: ServiceSettings,
    name: str,
    *,
    ttl_s: float = 300.0,
    negative_ttl_s: float = 5.0,
    jitter: float = 0.1,
) -> Cache[Thing]:
    return Cache(
        redis,
        name=name,
        model=Thing,
        keys=KeySpace("kit", settings.redis.key_prefix),
        ttl_s=ttl_s,
        negative_ttl_s=negative_ttl_s,
        jitter=jitter,
    )
