"""Request id, timing headers, access log and HTTP metrics of one request."""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

from servicekit.observability import metrics
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from starlette.types import Scope

    from servicekit.context import RequestContext

REQUEST_ID_HEADER = "x-request-id"
#: Recorded (never sent) for requests whose client disconnected; nginx's convention.
CLIENT_CLOSED_REQUEST = 499
# An incoming id is echoed only when it is short and harmless in logs and headers.
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{8,128}$")
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})

log = get_logger("servicekit.access")


def request_id(incoming: bytes | None) -> str:
    """A sane incoming ``X-Request-ID``, else a new random one (128 bits, hex).

    A correlation id, not a secret: the process's PRNG (seeded from the OS at start) is
    enough, and skips a ``getrandom`` system call per request.
    """
    if incoming is not None and _SANE_REQUEST_ID.match(incoming):
        return incoming.decode("ascii")
    return f"{random.getrandbits(128):032x}"  # nosec B311


def timing_headers(
    request_id: str, elapsed_ms: float, stats: RequestContext
) -> list[tuple[bytes, bytes]]:
    """``X-Request-ID`` and ``Server-Timing`` (total and database time)."""
    timing = f'app;dur={elapsed_ms:.2f}, db;dur={stats.query_ms:.2f};desc="{stats.queries} queries"'
    return [
        (REQUEST_ID_HEADER.encode(), request_id.encode()),
        (b"server-timing", timing.encode()),
    ]


def route_template(scope: Scope) -> str:
    """The matched route's template; never the raw path (unbounded label cardinality).

    For a route of an included router, ``scope["route"]`` is the router's own route, without
    the prefixes it was included under; FastAPI keeps the full template in the effective
    route context it selected.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path_format", None)
    if not isinstance(path, str):
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def record_request(
    scope: Scope, status: int, duration_s: float, stats: RequestContext, *, access_log: bool
) -> None:
    """Count the request, observe its latency and write its access-log line."""
    route = route_template(scope)
    method = scope.get("method", "")
    metrics.http_request_served(method, route, status, duration_s)
    if access_log:
        emit = log.debug if route in _QUIET_ROUTES else log.info
        emit(
            "http.request",
            method=method,
            path=scope.get("path"),
            route=route,
            status=status,
            duration_ms=round(duration_s * 1000, 2),
            queries=stats.queries,
            db_ms=round(stats.query_ms, 2),
            client=(scope.get("client") or (None,))[0],
        )
