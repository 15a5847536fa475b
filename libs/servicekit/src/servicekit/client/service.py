"""``ServiceClient``: one upstream service over httpx, with the resilience calls need.

Per request: the service's bearer token (client credentials, refreshed once on a 401),
``X-Request-ID`` and W3C ``traceparent`` from the request being served, a timeout, retries
with exponential backoff and jitter (stamina) for idempotent requests on connection errors,
timeouts, 502/503/504 and 429, a circuit breaker (purgatory) that fails fast while the
upstream keeps failing, problem+json answers raised as :class:`UpstreamProblem`, and metrics
labelled by upstream.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import stamina
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from servicekit.client.errors import (
    CircuitOpen,
    CredentialsRejected,
    UpstreamError,
    UpstreamProblem,
    UpstreamUnavailable,
)
from servicekit.context import current_request_id
from servicekit.observability import metrics

if TYPE_CHECKING:
    from collections.abc import Mapping

    from servicekit.client.tokens import ClientCredentials

#: Methods safe to send twice (RFC 9110 §9.2.2); a POST only with an ``Idempotency-Key``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Answers that say "try again later" rather than "this request is wrong".
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_UNAVAILABLE = frozenset({502, 503, 504})


class _Failed(Exception):
    """An answer that counts against the breaker and may be retried (5xx, 429)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"upstream answered {response.status_code}")
        self.response = response


class ServiceClient:
    """Calls to one upstream service; build it in a lifespan, share it, close it at shutdown."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        credentials: ClientCredentials | None = None,
        timeout_s: float = 5.0,
        attempts: int = 3,
        retry_timeout_s: float = 10.0,
        breaker_threshold: int = 5,
        breaker_reset_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.credentials = credentials
        self.attempts = attempts
        self.retry_timeout_s = retry_timeout_s
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=breaker_threshold, default_ttl=breaker_reset_s
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        """``GET path`` and the decoded JSON body (an error answer raises)."""
        return (await self.request("GET", path, **kwargs)).json()

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; returns a 2xx/3xx answer, raises an :class:`UpstreamError` otherwise."""
        method = method.upper()
        given = dict(headers or {})
        idempotent = method in IDEMPOTENT_METHODS or any(
            k.lower() == "idempotency-key" for k in given
        )
        attempts = self.attempts if idempotent else 1
        started = time.perf_counter()
        outcome = "error"
        try:
            async for attempt in stamina.retry_context(
                on=_retryable, attempts=attempts, timeout=self.retry_timeout_s
            ):
                with attempt:
                    response = await self._send_authorized(method, path, given, kwargs)
            outcome = str(response.status_code)
            return response
        except OpenedState as exc:
            outcome = "circuit_open"
            raise CircuitOpen(
                self.name, f"{self.name} is failing; not calling it for now."
            ) from exc
        except _Failed as exc:
            status = exc.response.status_code
            outcome = str(status)
            if status in _UNAVAILABLE:
                raise UpstreamUnavailable(self.name, f"{self.name} answered {status}.") from exc
            raise _problem(self.name, exc.response) from exc
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
            raise UpstreamUnavailable(self.name, f"{self.name} could not be reached.") from exc
        except UpstreamError as exc:
            outcome = str(exc.status) if isinstance(exc, UpstreamProblem) else exc.code
            raise
        finally:
            metrics.counter(
                "upstream_requests_total", "Calls to other services.", ("upstream", "outcome")
            ).labels(self.name, outcome).inc()
            metrics.histogram(
                "upstream_request_duration_seconds", "Calls to other services.", ("upstream",)
            ).labels(self.name).observe(time.perf_counter() - started)

    async def _send_authorized(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One attempt; a 401 on a cached token gets one more try with a fresh token."""
        for fresh in (False, True):
            token, response = await self._send(method, path, headers, kwargs)
            if response.status_code != 401 or token is None or fresh or self.credentials is None:
                break
            self.credentials.invalidate(token)  # revoked, or signed by a retired key
        if response.status_code >= 400:
            raise _problem(self.name, response)
        return response

    async def _send(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> tuple[str | None, httpx.Response]:
        outgoing = {**propagation_headers(), **headers}
        breaker = await self._breakers.get_breaker(self.name, exclude=[CredentialsRejected])
        # Connection errors, timeouts, 5xx and 429 count as failures; an open breaker
        # refuses before the token is fetched, so an outage costs no token-endpoint calls.
        async with breaker:
            token = await self.credentials.token() if self.credentials else None
            if token is not None:
                outgoing["Authorization"] = f"Bearer {token}"
            response = await self._http.request(method, path, headers=outgoing, **kwargs)
            if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
                raise _Failed(response)
        return token, response


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, _Failed):
        return exc.response.status_code in RETRYABLE_STATUSES
    # Connect errors, timeouts, resets, and a token endpoint that could not be reached.
    return isinstance(exc, httpx.TransportError | UpstreamUnavailable) and not isinstance(
        exc, CircuitOpen
    )


def _problem(upstream: str, response: httpx.Response) -> UpstreamProblem:
    try:
        body = response.json()
    except ValueError:
        body = None
    return UpstreamProblem(upstream, response.status_code, body if isinstance(body, dict) else {})


def propagation_headers() -> dict[str, str]:
    """``X-Request-ID`` and W3C ``traceparent`` of the request being served.

    With OpenTelemetry tracing on, its propagator writes the current span's context;
    otherwise the request id (32 hex digits) becomes the trace id, so the upstream's logs
    and traces join this request's.
    """
    headers: dict[str, str] = {}
    request_id = current_request_id()
    if request_id:
        headers["X-Request-ID"] = request_id
    try:
        from opentelemetry.propagate import inject
    except ImportError:  # tracing is an optional extra
        pass
    else:
        inject(headers)
    if "traceparent" not in headers and request_id and _is_trace_id(request_id):
        headers["traceparent"] = f"00-{request_id}-{secrets.token_hex(8)}-00"
    return headers


def _is_trace_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value) and set(value) != {"0"}
