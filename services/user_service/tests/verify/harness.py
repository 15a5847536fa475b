"""What the verify fixtures hand out: the service binary, the callables' types, polling."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from servicekit.testing.process import ServiceProcess

SERVE = Path(sys.executable).parent / "user-service"
#: Where `make verify` collects the timings the tests measure (JSON lines); unset: printed only.
MEASUREMENTS_ENV = "VERIFY_MEASUREMENTS"

StartService = Callable[..., ServiceProcess]
Measure = Callable[[str, float], None]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` (blocking) until true; the seconds it took. Fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started
