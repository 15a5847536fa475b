"""Shared, short-lived answers from the source of truth while Redis cannot give them.

With Redis up, a cache or a denylist mirror answers most reads and the database sees one
query per change. When Redis fails, every such read falls back to the source (PostgreSQL)
at once: one query per request, which caps a worker at what the database round trips allow
and queues everything behind them. An :class:`OutageMemo` coalesces concurrent reads of one
key into one load (single-flight) and keeps the answer for ``ttl_s`` (half a second by
default), so the source sees at most about one query per key per interval however many
requests ask.

That staleness stays inside the bound the in-process copies already have with Redis up: a
change made elsewhere reaches them within ``ChangeFeed.max_staleness_s`` (one second).
Changes made by this process :meth:`drop` their keys at once, and a load of a key that
began before its drop is neither kept nor joined, so the process always reads its own
writes. Entries are bounded in number (least recently used go first).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Iterable

K = TypeVar("K", bound="Hashable")
V = TypeVar("V")

#: Seconds an answer is shared: half the change feed's staleness bound.
DEFAULT_TTL_S = 0.5
DEFAULT_SIZE = 10_000


class OutageMemo(Generic[K, V]):
    """Single-flight loads with a short, bounded memory; see the module docstring."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, size: int = DEFAULT_SIZE) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        #: The load of each key that may still be kept: a drop forgets it (per key, so
        #: frequent writes to one key do not void the loads of every other).
        self._inflight: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The answer ``load()`` gave for ``key`` within ``ttl_s``, or a new (shared) one."""
        if self.ttl_s <= 0:
            return await load()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load))
            self._inflight[key] = task
            task.add_done_callback(_retrieve)
        # Shielded: a caller that goes away (its client disconnected) does not cancel the
        # load the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await load()
        finally:
            current = self._inflight.get(key) is asyncio.current_task()
            if current:
                del self._inflight[key]
        if current:  # not dropped while it loaded
            self._entries[key] = (time.monotonic() + self.ttl_s, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def drop(self, keys: Iterable[K]) -> None:
        """Forget ``keys``; loads running now are neither kept nor joined by later reads."""
        for key in keys:
            self._entries.pop(key, None)
            self._inflight.pop(key, None)


def _retrieve(task: asyncio.Task[object]) -> None:
    """Mark a load's failure as seen: its waiters re-raise it, or nobody waits any more."""
    if not task.cancelled():
        task.exception()
