"""Per-request context shared by middleware, logging, the database layer and metrics.

Values live in ``contextvars`` so every coroutine of one request sees them and concurrent
requests never do.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestStats:
    """Counters one request accumulates while it runs."""

    queries: int = 0
    query_ms: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The authenticated user's id (a UUID, rendered only when a line is logged).
user_id_var: ContextVar[object | None] = ContextVar("user_id", default=None)
request_stats_var: ContextVar[RequestStats | None] = ContextVar("request_stats", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return request_id_var.get()


def record_query(duration_ms: float) -> None:
    """Count one SQL statement against the current request (no-op outside requests)."""
    stats = request_stats_var.get()
    if stats is not None:
        stats.queries += 1
        stats.query_ms += duration_ms
