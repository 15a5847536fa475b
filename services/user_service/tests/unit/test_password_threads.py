"""The hashing threads yield the CPU to the event loop."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from user_service.config import PasswordSettings
from user_service.security import PasswordHasher

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's"),
]


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("nice", [10, 0])
async def test_hash_threads_run_at_the_configured_niceness(nice: int) -> None:
    hasher = PasswordHasher(PasswordSettings(hash_workers=1, hash_nice=nice))
    try:
        assert await hasher._run(_niceness) == _niceness() + nice
        assert (await hasher.verify("not the password", await hasher.hash("a password!")))[
            0
        ] is False
    finally:
        hasher.close()
