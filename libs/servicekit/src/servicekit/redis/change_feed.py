"""Keep in-process copies of Redis state current across instances, within a bound.

A :class:`ChangeFeed` pairs a Redis generation counter with a pub/sub channel. Each change
is published by one Lua script that increments the counter and publishes
``"<generation>:<payload>"``, so every message carries its sequence number. Subscribers
apply messages as they arrive; a poller reads the counter every ``poll_interval_s`` and,
if any number in between was not received (a lost message, a reconnect, a Redis restart),
asks its owners to resynchronise from Redis. :attr:`fresh` says whether the copy can be
trusted: only while polls succeed, so an unreachable Redis makes callers fall back to their
slower, authoritative path instead of serving stale state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from servicekit.observability.logging import get_logger
from servicekit.redis.client import REDIS_ERRORS, AnyRedis

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

# KEYS[1] generation; ARGV[1] channel, ARGV[2] payload. Returns the new generation.
_PUBLISH = """
local n = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], n .. ':' .. ARGV[2])
return n
"""

log = get_logger(__name__)

MessageHandler = Callable[[str], None]
Resync = Callable[[], Awaitable[None]]


class ChangeFeed:
    """A generation counter plus a channel; see the module docstring."""

    def __init__(
        self,
        redis: AnyRedis,
        *,
        channel: str,
        generation_key: str,
        poll_interval_s: float = 0.25,
        max_staleness_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.generation_key = generation_key
        self.poll_interval_s = poll_interval_s
        self.max_staleness_s = max_staleness_s
        self._publish = redis.register_script(_PUBLISH)
        self._handlers: list[MessageHandler] = []
        self._resyncs: list[Resync] = []
        self._generation: int | None = None
        self._received: set[int] = set()
        self._last_ok = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: PubSub | None = None
        self._stopping = False

    def on_message(self, handler: MessageHandler) -> None:
        """Call ``handler(payload)`` for each change published by any instance."""
        self._handlers.append(handler)

    def on_resync(self, resync: Resync) -> None:
        """Call ``resync()`` when changes may have been missed."""
        self._resyncs.append(resync)

    @property
    def fresh(self) -> bool:
        """Whether every change up to a recent poll has been applied."""
        return (
            self._generation is not None
            and time.monotonic() - self._last_ok <= self.max_staleness_s
        )

    async def publish(self, payload: str) -> None:
        """Announce a change (raises one of ``REDIS_ERRORS`` if Redis is unreachable)."""
        await self._publish(keys=[self.generation_key], args=[self.channel, payload])

    def _deliver(self, data: str) -> None:
        number, _, payload = data.partition(":")
        if number.isdigit():
            self._received.add(int(number))
        for handler in self._handlers:
            handler(payload)

    async def poll(self) -> None:
        """Compare the counter with what was received; resynchronise on a gap."""
        raw = await self.redis.get(self.generation_key)
        current = int(raw) if raw else 0
        previous = self._generation
        expected = set(range((previous or 0) + 1, current + 1))
        if previous is None or current < previous or not expected <= self._received:
            for resync in self._resyncs:
                await resync()
            if previous is not None:
                log.info("change_feed.resynced", channel=self.channel, generation=current)
        self._received = {n for n in self._received if n > current}
        self._generation = current
        self._last_ok = time.monotonic()

    async def _listen(self) -> None:
        # The stop flag backs up cancellation: redis-py can swallow a CancelledError that
        # lands while a connection is being set up.
        while not self._stopping:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            try:
                await pubsub.subscribe(self.channel)
                while not self._stopping:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and isinstance(message.get("data"), str):
                        self._deliver(message["data"])
            except (*REDIS_ERRORS, OSError, RuntimeError) as exc:
                log.debug("change_feed.listen_failed", channel=self.channel, error=repr(exc))
                await self._close_pubsub()
                await asyncio.sleep(self.poll_interval_s)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            # Bounded: closing a connection that was cut mid-handshake must not hang.
            with contextlib.suppress(*REDIS_ERRORS, OSError, TimeoutError):
                await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call]

    async def _poll_forever(self) -> None:
        while not self._stopping:
            try:
                await self.poll()
            except (*REDIS_ERRORS, OSError) as exc:
                # Not fresh any more; the next successful poll sees the gap and resyncs.
                self._generation = None
                log.debug("change_feed.poll_failed", channel=self.channel, error=repr(exc))
            except Exception as exc:
                log.warning("change_feed.poll_error", channel=self.channel, error=repr(exc))
            await asyncio.sleep(self.poll_interval_s)

    def start(self) -> None:
        """Subscribe and poll in the background."""
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"change-feed-listen:{self.channel}"),
            asyncio.create_task(self._poll_forever(), name=f"change-feed-poll:{self.channel}"),
        ]

    async def stop(self) -> None:
        """Stop listening and polling."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        self._tasks = []
        await self._close_pubsub()
