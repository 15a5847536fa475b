"""Cache-aside over Redis: jittered TTLs, negative caching, single-flight, safe invalidation.

* A read costs one round trip (``MGET`` of the value and its generation counter).
* A miss loads from the source once per process however many requests wait for it
  (single-flight; a request that saw a later generation than a running load does not
  join it), then stores the value only if no invalidation happened meanwhile: the store
  is a Lua compare-and-set on the generation counter, so a slow reader can never put back
  a value older than the last write.
* Invalidation bumps the generation and deletes the value; it is queued to run after the
  transaction commits (:meth:`Cache.invalidate_after_commit`) and dropped on rollback.
* Redis errors never fail a request: reads fall back to the source (concurrent reads of
  one key share a load, and its answer for half a second: :class:`OutageMemo`), failed invalidations
  are remembered and retried until Redis answers again (:meth:`Cache.repair`); a read of
  a key still waiting for its invalidation retries it first, so this process never serves
  the value a write replaced, even before the repair runs.

* Optionally (``local_size``), a :class:`LocalTier` in process memory answers hits with no
  round trip at all; invalidations reach every instance's tier through a
  :class:`~servicekit.redis.change_feed.ChangeFeed`, and the tier is bypassed while the feed is
  not fresh.

The value and generation keys of one entry share a hash tag, so every command and script
touches a single Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel

from servicekit.db.session import on_commit
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings
from servicekit.redis.change_feed import ChangeFeed
from servicekit.redis.client import REDIS_ERRORS, AnyRedis
from servicekit.redis.local_tier import LocalTier
from servicekit.redis.outage_memo import OutageMemo

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from sqlalchemy.ext.asyncio import AsyncSession

    from servicekit.redis.keys import KeySpace

ModelT = TypeVar("ModelT", bound=BaseModel)
_NEGATIVE = "\x00none"
#: Generation counters outlive any value by far; they only need to bridge a load.
_GENERATION_TTL_S = 86_400

# KEYS[1] value, KEYS[2] generation; ARGV[1] payload, ARGV[2] generation seen, ARGV[3] ttl ms
_STORE_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""

log = get_logger(__name__)
outage_log = ThrottledWarnings(log)


class Cache(Generic[ModelT]):
    """A named cache of Pydantic models keyed by an id."""

    def __init__(
        self,
        redis: AnyRedis,
        *,
        name: str,
        model: type[ModelT],
        keys: KeySpace,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 5.0,
        jitter: float = 0.1,
        enabled: bool = True,
        local_size: int = 0,
        local_ttl_s: float = 30.0,
    ) -> None:
        self.redis = redis
        self.name = name
        self.model = model
        self._keys = keys
        self._prefix = keys.entity(name)
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.jitter = jitter
        self.enabled = enabled
        self._store = redis.register_script(_STORE_IF_UNCHANGED)
        #: Loads running now, by key and the generation they started at (see get_or_load).
        self._inflight: dict[tuple[str, str], asyncio.Future[ModelT | None]] = {}
        self._pending_invalidations: set[str] = set()
        #: Reads of the source while Redis fails, shared (see OutageMemo).
        self._outage: OutageMemo[str, ModelT | None] = OutageMemo()
        self._events = metrics.cache_events()
        # Resolved once: labels() costs more than the increment on the hit path.
        self._hits = self._events.labels(name, "hit")
        self._misses = self._events.labels(name, "miss")
        self.local: LocalTier[ModelT] | None = None
        if local_size > 0:
            feed = ChangeFeed(
                redis,
                channel=f"{self._prefix}events",
                generation_key=f"{self._prefix}generation",
            )
            self.local = LocalTier(feed, size=local_size, ttl_s=local_ttl_s)

    async def start(self) -> None:
        """Start the in-process tier's invalidation feed (if there is a local tier)."""
        if self.local is not None:
            self.local.feed.start()

    async def stop(self) -> None:
        """Stop the invalidation feed."""
        if self.local is not None:
            await self.local.feed.stop()

    def key(self, ident: object) -> str:
        """The value key; the braces make it a hash tag shared with the generation key."""
        return self._keys.tagged(self.name, ident)

    def _ttl_ms(self, base_s: float) -> int:
        spread = base_s * self.jitter
        return max(1, int((base_s + random.uniform(-spread, spread)) * 1000))

    async def get_or_load(
        self, ident: object, loader: Callable[[], Awaitable[ModelT | None]]
    ) -> ModelT | None:
        """The cached value, or ``loader()``'s (stored for next time); ``None`` if absent."""
        if not self.enabled:
            return await loader()
        key = self.key(ident)
        if key in self._pending_invalidations:
            # Its invalidation failed while Redis was away, and Redis may have kept the old
            # value (a partition, persistence): drop it before trusting the cache again,
            # rather than serving it until the next repair() runs.
            await self._invalidate_keys([key])
            if key in self._pending_invalidations:  # still away
                return await loader()
        local = self.local
        epoch = local.epoch if local is not None else 0
        if local is not None:
            found, value = local.get(key)
            if found:
                self._hits.inc()
                return value
        try:
            raw, generation = await self.redis.mget(key, f"{key}:gen")
        except REDIS_ERRORS as exc:
            self._degraded("read", exc)
            return await self._outage.get(key, loader)
        if raw is not None:
            self._hits.inc()
            value = None if raw == _NEGATIVE else self.model.model_validate_json(raw)
            if local is not None:
                local.put(key, value, epoch)
            return value
        self._misses.inc()
        return await self._load_once(
            ident, loader, key, str(generation) if generation else "", epoch
        )

    async def _load_once(
        self,
        ident: object,
        loader: Callable[[], Awaitable[ModelT | None]],
        key: str,
        seen: str,
        epoch: int,
    ) -> ModelT | None:
        """Run ``loader`` for a miss, or share the load of ``key`` already running.

        Single-flight per key *and generation*: a read that saw a newer generation (a
        write committed since that load began) must not be handed the load's older value.
        """
        flight = (key, seen)
        inflight = self._inflight.get(flight)
        if inflight is None:
            return await self._lead(flight, loader, epoch)
        try:
            return await asyncio.shield(inflight)
        except asyncio.CancelledError:
            if not inflight.cancelled():
                raise  # this request itself was cancelled
            # The leader was cancelled (its client went away): start over, so one of the
            # waiters leads a new load instead of each querying the source.
            return await self.get_or_load(ident, loader)

    async def _lead(
        self,
        flight: tuple[str, str],
        loader: Callable[[], Awaitable[ModelT | None]],
        epoch: int,
    ) -> ModelT | None:
        """Load, hand the value to the waiters, and store it unless a write came since."""
        key, seen = flight
        future: asyncio.Future[ModelT | None] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            try:
                value = await loader()
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, no "never retrieved"
                raise
            future.set_result(value)
            # Still registered while storing: a miss read meanwhile joins this load
            # instead of starting another one.
            stored = await self._store_if_unchanged(key, value, seen)
        finally:
            del self._inflight[flight]
        if stored and self.local is not None:  # only what Redis accepted as current
            self.local.put(key, value, epoch)
        return value

    async def _store_if_unchanged(self, key: str, value: ModelT | None, generation: str) -> bool:
        if value is None:
            payload, ttl_ms = _NEGATIVE, self._ttl_ms(self.negative_ttl_s)
        else:
            payload, ttl_ms = value.model_dump_json(), self._ttl_ms(self.ttl_s)
        try:
            stored = await self._store(keys=[key, f"{key}:gen"], args=[payload, generation, ttl_ms])
        except REDIS_ERRORS as exc:
            self._degraded("write", exc)
            return False
        return bool(stored)

    async def invalidate(self, idents: Iterable[object]) -> None:
        """Drop entries now; on a Redis error they are retried by :meth:`repair`."""
        keys = [self.key(ident) for ident in idents]
        if keys:
            await self._invalidate_keys(keys)

    async def _invalidate_keys(self, keys: list[str]) -> None:
        self._outage.drop(keys)
        if self.local is not None:
            self.local.drop(keys)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incr(f"{key}:gen")
                    pipe.expire(f"{key}:gen", _GENERATION_TTL_S)
                    pipe.delete(key)
                await pipe.execute()
            if self.local is not None:  # every other instance drops its local copy
                await self.local.feed.publish(" ".join(keys))
        except REDIS_ERRORS as exc:
            self._pending_invalidations.update(keys)
            self._degraded("invalidate", exc)
        else:
            self._pending_invalidations.difference_update(keys)

    def invalidate_after_commit(self, session: AsyncSession, idents: Iterable[object]) -> None:
        """Queue an invalidation to run once ``session`` commits (dropped on rollback)."""
        keys = [self.key(ident) for ident in idents]

        async def invalidate() -> None:
            await self._invalidate_keys(keys)

        on_commit(session, invalidate)

    @property
    def needs_repair(self) -> bool:
        """Whether invalidations failed and are waiting for Redis to come back."""
        return bool(self._pending_invalidations)

    async def repair(self) -> None:
        """Retry failed invalidations (call periodically; cheap when there are none)."""
        if self._pending_invalidations:
            keys = sorted(self._pending_invalidations)
            await self._invalidate_keys(keys)
            if not self._pending_invalidations:
                log.info("cache.repaired", cache=self.name, keys=len(keys))

    def _degraded(self, operation: str, exc: Exception) -> None:
        self._events.labels(self.name, "error").inc()
        metrics.redis_errors().labels(f"cache_{operation}", "fail_open").inc()
        outage_log.warning(
            "cache.redis_error",
            key=f"{self.name}:{operation}",
            cache=self.name,
            operation=operation,
            error=repr(exc),
        )
