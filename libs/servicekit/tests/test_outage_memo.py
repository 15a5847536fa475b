"""The outage memo: one load per key and interval, and nothing kept across a drop."""

from __future__ import annotations

import asyncio

from servicekit.redis.outage_memo import OutageMemo


class Source:
    """A source of truth that counts its reads and can be held mid-read."""

    def __init__(self) -> None:
        self.value = "old"
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()

    async def started(self, reads: int) -> None:
        """Yield until ``reads`` reads have begun."""
        for _ in range(100):
            if self.reads >= reads:
                return
            await asyncio.sleep(0)
        raise AssertionError("the read did not begin")

    async def read(self) -> str:
        self.reads += 1
        value = self.value
        await self.release.wait()
        return value


async def test_a_load_begun_before_a_drop_is_neither_kept_nor_joined() -> None:
    memo: OutageMemo[str, str] = OutageMemo(ttl_s=60.0)
    source = Source()
    source.release.clear()
    before = asyncio.create_task(memo.get("k", source.read))
    await source.started(1)
    memo.drop(["k"])  # a write committed while the read was running
    source.value = "new"
    after = asyncio.create_task(memo.get("k", source.read))  # does not join the old read
    await source.started(2)
    source.release.set()
    assert (await before, await after) == ("old", "new")
    assert await memo.get("k", source.read) == "new"  # the later read is the one kept
    assert source.reads == 2


async def test_a_drop_of_one_key_keeps_the_loads_of_others() -> None:
    memo: OutageMemo[str, str] = OutageMemo(ttl_s=60.0)
    source = Source()
    source.release.clear()
    load = asyncio.create_task(memo.get("a", source.read))
    await source.started(1)
    memo.drop(["b"])
    source.release.set()
    await load
    assert await memo.get("a", source.read) == "old"
    assert source.reads == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_load() -> None:
    memo: OutageMemo[str, str] = OutageMemo(ttl_s=60.0)
    source = Source()
    source.release.clear()
    gone = asyncio.create_task(memo.get("k", source.read))
    waiting = asyncio.create_task(memo.get("k", source.read))
    await source.started(1)
    gone.cancel()
    source.release.set()
    assert await waiting == "old"
    assert source.reads == 1


async def test_the_memory_is_bounded() -> None:
    memo: OutageMemo[int, int] = OutageMemo(ttl_s=60.0, size=3)
    reads: list[int] = []

    async def load(key: int) -> int:
        reads.append(key)
        return key

    for key in range(5):
        await memo.get(key, lambda key=key: load(key))  # type: ignore[misc]
    await memo.get(0, lambda: load(0))  # evicted: read again
    await memo.get(4, lambda: load(4))  # kept
    assert reads == [0, 1, 2, 3, 4, 0]
