"""Per-request context shared by middleware, logging, the database layer, limits and metrics.

Values live in ``contextvars`` so every coroutine of one request sees them and concurrent
requests never do. :class:`servicekit.http.ChassisMiddleware` sets them for each request
and resets them when it ends.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servicekit.auth.principal import Principal
    from servicekit.ratelimit.limiter import RateLimitResult


@dataclass(slots=True)
class RequestContext:
    """What one request accumulates while it runs."""

    #: The client's address, resolved through the trusted proxies.
    client_ip: str = "unknown"
    #: The ``User-Agent`` header as sent (``None`` without one).
    user_agent: str | None = None
    #: The verified access token's principal, once a dependency authenticated it.
    principal: Principal | None = None
    queries: int = 0
    query_ms: float = 0.0
    #: Every rate limit the request met; the tightest is advertised in ``RateLimit-*``.
    rate_limits: list[RateLimitResult] = field(default_factory=list)


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The authenticated user's id (a UUID, rendered only when a line is logged).
user_id_var: ContextVar[object | None] = ContextVar("user_id", default=None)
request_context_var: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return request_id_var.get()


def current_request() -> RequestContext | None:
    """The context of the request being served, if any."""
    return request_context_var.get()


def record_query(duration_ms: float) -> None:
    """Count one SQL statement against the current request (no-op outside requests)."""
    context = request_context_var.get()
    if context is not None:
        context.queries += 1
        context.query_ms += duration_ms


def record_rate_limits(results: list[RateLimitResult]) -> None:
    """Note limits met by the current request (no-op outside requests)."""
    context = request_context_var.get()
    if context is not None:
        context.rate_limits.extend(results)
