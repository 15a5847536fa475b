"""Requests of one rate-limit bucket queued behind the lease refill in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Generic, TypeVar

T = TypeVar("T")


class RefillQueue(Generic[T]):
    """One request refills a bucket's lease at a time; the others queue here.

    When the refill ends, as many waiters are woken as the new lease has tokens, plus one to
    start the next refill while more are waiting. Waking every waiter instead made them race
    for a few tokens and queue again: at 1,024 concurrent requests that herd cost more CPU
    than the Redis calls the lease saves. A refusal or an error is shared by every waiter.
    """

    def __init__(self) -> None:
        self.refilling = False
        self._waiters: deque[asyncio.Future[T | None]] = deque()

    @property
    def idle(self) -> bool:
        """No refill in flight and nobody waiting: the queue can be dropped."""
        return not self.refilling and not self._waiters

    async def wait(self) -> T | None:
        """Wait for a turn: ``None`` means try the lease (or refill); a value is shared."""
        waiter: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake(1)  # woken, then cancelled: pass the turn on
            else:
                with suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def refilled(self, tokens: int) -> None:
        """The refill took a lease of ``tokens`` (0: it went away; someone else refills)."""
        self.refilling = False
        self._wake(tokens + 1)

    def share(self, outcome: T | Exception) -> None:
        """Every waiter gets ``outcome`` (a refusal) or raises it (an error)."""
        self.refilling = False
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if isinstance(outcome, Exception):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    def _wake(self, count: int) -> None:
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
