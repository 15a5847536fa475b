"""The denylist maintainer's background loop ends at shutdown, whatever its drivers do."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.auth import SessionDenylist
from servicekit.db import AsyncSession
from user_service.services.revocation import DenylistMaintainer
from user_service.services.user_cache import UserCache

pytestmark = pytest.mark.unit


class SwallowingMaintainer(DenylistMaintainer):
    """A check whose driver eats the cancellation: the call simply returns.

    Both aiosqlite and redis-py can do so when the cancellation lands mid-call.
    """

    def __init__(self) -> None:
        super().__init__(
            cast(SessionDenylist, None),
            cast(UserCache, None),
            cast(async_sessionmaker[AsyncSession], None),
            ttl_s=60,
        )
        self.checks = 0

    async def step(self) -> None:
        self.checks += 1
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)


async def test_stop_ends_a_loop_whose_check_swallowed_the_cancellation() -> None:
    maintainer = SwallowingMaintainer()
    maintainer.start()
    await asyncio.sleep(0.05)  # inside the first check
    started = time.monotonic()
    await asyncio.wait_for(maintainer.stop(timeout_s=5), 3)
    assert time.monotonic() - started < 1.0  # the flag ended it, not the timeout
    assert maintainer.checks == 1


async def test_stop_gives_up_on_a_loop_that_never_yields_back() -> None:
    class Stuck(SwallowingMaintainer):
        released = asyncio.Event()

        async def step(self) -> None:
            while not self.released.is_set():
                try:
                    await self.released.wait()
                except asyncio.CancelledError:
                    continue

    maintainer = Stuck()
    maintainer.start()
    await asyncio.sleep(0.05)
    task = maintainer._task
    started = time.monotonic()
    await asyncio.wait_for(maintainer.stop(timeout_s=0.3), 3)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert task is not None
    assert not task.done()  # abandoned, still stuck
    maintainer.released.set()  # the test's own clean-up
    await asyncio.wait_for(task, 1.0)
