"""The in-process tier of a cache: hits with no round trip, invalidated through a change feed."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from servicekit.redis.change_feed import ChangeFeed

ModelT = TypeVar("ModelT", bound=BaseModel)


class LocalTier(Generic[ModelT]):
    """An in-process tier in front of Redis, trusted only while its change feed is fresh.

    Invalidations published by any instance drop entries at once; a gap in the feed (a
    lost message, an outage) clears the tier. A value is kept only if no invalidation
    happened since its read began (the ``epoch`` check), so a slow read cannot bring back
    what a concurrent write dropped.
    """

    def __init__(self, feed: ChangeFeed, *, size: int, ttl_s: float) -> None:
        self.feed = feed
        self.size = size
        self.ttl_s = ttl_s
        self.epoch = 0
        self._entries: OrderedDict[str, tuple[float, ModelT | None]] = OrderedDict()
        feed.on_message(lambda payload: self.drop(payload.split()))
        feed.on_resync(self._clear)

    def get(self, key: str) -> tuple[bool, ModelT | None]:
        """``(True, value)`` on a usable hit, else ``(False, None)``."""
        if not self.feed.fresh:
            return False, None
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: str, value: ModelT | None, epoch: int) -> None:
        """Keep ``value`` if nothing was invalidated since ``epoch`` was read."""
        if epoch != self.epoch or not self.feed.fresh:
            return
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (and refuse values read before now)."""
        self.epoch += 1
        for key in keys:
            self._entries.pop(key, None)

    async def _clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
