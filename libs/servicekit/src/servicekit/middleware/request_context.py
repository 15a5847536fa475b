"""Request id, timing, access log, HTTP metrics and the last-resort 500 for one request."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import metrics
from servicekit.context import RequestStats, request_id_var, request_stats_var
from servicekit.errors import internal_error_response
from servicekit.logging import get_logger

REQUEST_ID_HEADER = "x-request-id"
#: Recorded (never sent) for requests whose client disconnected; nginx's convention.
CLIENT_CLOSED_REQUEST = 499
# An incoming id is echoed only when it is short and harmless in logs and headers.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})

log = get_logger("servicekit.access")


def _route_template(scope: Scope) -> str:
    """The matched route's template; never the raw path (unbounded label cardinality)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class RequestContextMiddleware:
    """Outermost middleware: everything inside runs with a request id bound.

    * accepts a sane incoming ``X-Request-ID`` or generates one, and echoes it;
    * adds ``Server-Timing`` (total and database time) and ``X-Process-Time``;
    * writes one access-log line per request with the SQL statement count;
    * records request count, latency and in-flight requests by route template;
    * turns an unexpected exception into a problem+json 500 carrying the request id.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        stats = RequestStats()
        id_token = request_id_var.set(request_id)
        stats_token = request_stats_var.set(stats)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        in_flight = metrics.http_in_flight()
        in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                headers["x-process-time"] = f"{elapsed_ms / 1000:.6f}"
                headers["server-timing"] = (
                    f"app;dur={elapsed_ms:.2f}, "
                    f'db;dur={stats.query_ms:.2f};desc="{stats.queries} queries"'
                )
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client went away before its body arrived: nobody to answer, not a fault.
            status = CLIENT_CLOSED_REQUEST
            log.info("request.client_disconnected", path=scope.get("path"))
        except Exception as exc:
            log.error("request.unhandled_exception", exc_info=exc, path=scope.get("path"))
            if response_started:
                raise
            response = internal_error_response(scope.get("path", ""))
            await response(scope, receive, send_wrapper)
        finally:
            in_flight.dec()
            duration = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            metrics.http_requests().labels(method, route, str(status)).inc()
            metrics.http_latency().labels(method, route).observe(duration)
            if self.access_log:
                emit = log.debug if route in _QUIET_ROUTES else log.info
                emit(
                    "http.request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                    queries=stats.queries,
                    db_ms=round(stats.query_ms, 2),
                    client=(scope.get("client") or (None,))[0],
                )
            structlog.contextvars.unbind_contextvars("request_id", "user_id")
            request_stats_var.reset(stats_token)
            request_id_var.reset(id_token)
