"""Warnings of a failure that repeats on every request, written once per interval.

During a Redis outage every request takes a degraded path (cache, rate limiter, denylist),
and a warning per request and path wrote tens of thousands of lines in 20 seconds: the log
pipeline paid for the outage again, and the one line that mattered was buried. A
:class:`ThrottledWarnings` writes the first occurrence of each event at once, then at most
one line per ``interval_s`` carrying how many it held back (``suppressed``). Metrics still
count every occurrence, so alerts and dashboards see the full rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

#: Seconds between two lines of one event while it keeps happening.
DEFAULT_INTERVAL_S = 10.0


@dataclass(slots=True)
class _Window:
    next_at: float
    suppressed: int = 0


class ThrottledWarnings:
    """``warning(event, ...)`` at most once per ``interval_s`` per event and ``key``."""

    def __init__(
        self, logger: structlog.stdlib.BoundLogger, *, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._windows: dict[tuple[str, str], _Window] = {}

    def warning(self, event: str, *, key: str = "", **fields: Any) -> bool:
        """Write ``event`` unless one was written within the interval; whether it was.

        ``key`` separates occurrences of one event that deserve a line each (a cache name,
        an operation); it is not written. The line after a quiet spell carries the count of
        lines held back since the previous one, as ``suppressed``.
        """
        now = time.monotonic()
        window = self._windows.get((event, key))
        if window is not None and now < window.next_at:
            window.suppressed += 1
            return False
        if window is not None and window.suppressed:
            fields["suppressed"] = window.suppressed
        self._windows[(event, key)] = _Window(next_at=now + self.interval_s)
        self.logger.warning(event, **fields)
        return True
