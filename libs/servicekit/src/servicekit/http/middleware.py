"""The chassis' per-request work as one pure-ASGI layer.

Request id and context, the last-resort 500, trusted hosts, body size, the ``global_ip``
rate limit, and the response headers (request id, timing, ``RateLimit-*``, security). One
layer instead of five: every layer costs a coroutine frame and a ``send`` wrapper on every
request, which on the hottest route was about a third of the time spent in the app.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from servicekit.context import RequestContext, request_context_var, request_id_var, user_id_var
from servicekit.http.body_limit import declared_too_large, limit_receive, too_large_response
from servicekit.http.client_ip import IPNetwork, client_ip
from servicekit.http.error_handlers import cancelled_response, internal_error_response
from servicekit.http.json_limit import buffer_body, is_json, nested_deeper_than, too_deep_response
from servicekit.http.problem import problem_response
from servicekit.http.rate_limits import add_rate_limit_headers, check_global_limit
from servicekit.http.request_log import (
    CLIENT_CLOSED_REQUEST,
    record_request,
    request_id,
    timing_headers,
)
from servicekit.http.security import HostPolicy, SecurityHeaders
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.state import scope_app_state

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = get_logger("servicekit.access")

_WANTED = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"x-request-id",
        b"content-type",
        b"user-agent",
    }
)


class ChassisMiddleware:
    """Outermost middleware: everything inside runs with a request id bound.

    In order: a sane incoming ``X-Request-ID`` is kept (else one is generated) and bound to
    logs; a ``Host`` outside ``allowed_hosts`` gets 400; a declared body over ``max_bytes``
    gets 413 (a streamed one is cut off at the limit); a JSON body nested deeper than
    ``max_json_depth`` gets 400 before any parser recurses into it; requests under
    ``api_prefix`` pay the ``global_ip`` limit (429). Every response, errors included,
    carries the request id, ``Server-Timing``, the tightest ``RateLimit-*`` and the security
    headers; every request is counted, timed and access-logged; an unexpected exception
    becomes a problem+json 500.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Sequence[str],
        max_body_bytes: int,
        max_json_depth: int = 32,
        trusted_proxies: Sequence[IPNetwork],
        api_prefix: str = "/api/",
        access_log: bool = True,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.hosts = HostPolicy(allowed_hosts)
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.trusted_proxies = list(trusted_proxies)
        self.api_prefix = api_prefix
        self.access_log = access_log
        self.security_headers = SecurityHeaders(hsts=hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; non-HTTP scopes pass straight through to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope["headers"] if name in _WANTED}
        rid = request_id(headers.get(b"x-request-id"))
        path: str = scope.get("path", "")
        context = RequestContext()
        id_token = request_id_var.set(rid)
        context_token = request_context_var.set(context)
        user_token = user_id_var.set(None)
        response = _Response(time.perf_counter())
        in_flight = metrics.http_in_flight()
        in_flight.inc()
        send_wrapper = self._sender(send, response, rid, path, context)
        try:
            context.client_ip = client_ip(scope, self.trusted_proxies)
            agent = headers.get(b"user-agent")
            context.user_agent = agent.decode("latin-1") if agent is not None else None
            refusal = await self._refusal(scope, headers, path, context.client_ip)
            if refusal is not None:
                await refusal(scope, receive, send_wrapper)
                return
            # Without Content-Length or chunked encoding an HTTP/1.1 request has no body.
            has_body = b"content-length" in headers or b"transfer-encoding" in headers
            inner_receive = limit_receive(receive, self.max_body_bytes) if has_body else receive
            if has_body and is_json(headers.get(b"content-type")):
                refusal, inner_receive = await self._checked_json(inner_receive, path)
                if refusal is not None:
                    await refusal(scope, receive, send_wrapper)
                    return
            await self.app(scope, inner_receive, send_wrapper)
        except ClientDisconnect:
            # The client went away before its body arrived: nobody to answer, not a fault.
            response.status = CLIENT_CLOSED_REQUEST
            log.info("request.client_disconnected", path=path)
        except Exception as exc:
            log.error("request.unhandled_exception", exc_info=exc, path=path)
            if response.started:
                raise
            await internal_error_response(path)(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            # Only the server cancels a request task: uvicorn, when the drain timeout ends.
            # Its own answer would be a plain-text 500; the task stays cancelled.
            log.warning("request.cancelled", path=path)
            if not response.started:
                await cancelled_response(path)(scope, receive, send_wrapper)
            raise
        finally:
            in_flight.dec()
            duration_s = time.perf_counter() - response.began
            record_request(scope, response.status, duration_s, context, access_log=self.access_log)
            user_id_var.reset(user_token)
            request_context_var.reset(context_token)
            request_id_var.reset(id_token)

    def _sender(
        self, send: Send, response: _Response, rid: str, path: str, context: RequestContext
    ) -> Send:
        """``send`` that adds the chassis' headers to the response start."""

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.started = True
                response.status = message["status"]
                raw = message.setdefault("headers", [])
                if not isinstance(raw, list):
                    raw = message["headers"] = list(raw)
                elapsed_ms = (time.perf_counter() - response.began) * 1000
                raw.extend(timing_headers(rid, elapsed_ms, context))
                add_rate_limit_headers(raw, context.rate_limits)
                self.security_headers.add(raw, path)
            await send(message)

        return send_wrapper

    async def _refusal(
        self, scope: Scope, headers: dict[bytes, bytes], path: str, ip: str
    ) -> Response | None:
        """The answer to a request refused before the app sees it, or ``None``."""
        if not self.hosts.admits(path, headers.get(b"host", b"").decode("latin-1")):
            return problem_response(
                status=400,
                code="invalid_host",
                detail="The Host header is not served here.",
                instance=path,
            )
        if declared_too_large(headers.get(b"content-length"), self.max_body_bytes):
            return too_large_response(self.max_body_bytes, path)
        if path.startswith(self.api_prefix):
            state = scope_app_state(scope)
            if state is not None:
                return await check_global_limit(state.rate_limiter, ip, path)
        return None

    async def _checked_json(self, receive: Receive, path: str) -> tuple[Response | None, Receive]:
        """The refusal of a JSON body too large or too deep, else ``None``, and its replay."""
        try:
            body, replay = await buffer_body(receive)
        except HTTPException:  # the streamed body passed max_body_bytes
            return too_large_response(self.max_body_bytes, path), receive
        if nested_deeper_than(body, self.max_json_depth):
            return too_deep_response(self.max_json_depth, path), receive
        return None, replay


@dataclass(slots=True)
class _Response:
    """What the chassis learns of the response it passes through."""

    began: float
    status: int = 500
    started: bool = False
