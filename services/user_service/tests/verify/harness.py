"""What the verify fixtures hand out: the service binary and the callables' types."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from servicekit.testing.process import ServiceProcess

SERVE = Path(sys.executable).parent / "user-service"
#: Where `make verify` collects the timings the tests measure (JSON lines); unset: printed only.
MEASUREMENTS_ENV = "VERIFY_MEASUREMENTS"

StartService = Callable[..., ServiceProcess]
Measure = Callable[[str, float], None]
