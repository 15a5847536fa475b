"""RefillQueue: who wakes when a lease refill ends."""

from __future__ import annotations

import asyncio

import pytest

from servicekit.ratelimit.refill_queue import RefillQueue

pytestmark = pytest.mark.unit


async def _queued(queue: RefillQueue[str], count: int) -> list[asyncio.Task[str | None]]:
    tasks = [asyncio.create_task(queue.wait()) for _ in range(count)]
    await asyncio.sleep(0)  # let them queue
    return tasks


async def test_a_refill_wakes_one_waiter_per_token_and_one_to_refill_next() -> None:
    queue: RefillQueue[str] = RefillQueue()
    queue.refilling = True
    tasks = await _queued(queue, 10)
    queue.refilled(3)
    await asyncio.sleep(0)
    assert [t.done() for t in tasks] == [True] * 4 + [False] * 6
    queue.share("refused")
    assert await asyncio.gather(*tasks[4:]) == ["refused"] * 6
    assert queue.idle


async def test_a_woken_waiter_that_is_cancelled_passes_its_turn_on() -> None:
    queue: RefillQueue[str] = RefillQueue()
    queue.refilling = True
    first, second = await _queued(queue, 2)
    queue.refilled(0)  # wakes only the first, to refill
    first.cancel()  # ...which goes away before it runs
    await asyncio.sleep(0)
    assert await second is None  # the turn went on instead of stranding the queue
    assert first.cancelled()


async def test_errors_are_raised_by_every_waiter() -> None:
    queue: RefillQueue[str] = RefillQueue()
    queue.refilling = True
    tasks = await _queued(queue, 3)
    queue.share(ConnectionError("redis down"))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
