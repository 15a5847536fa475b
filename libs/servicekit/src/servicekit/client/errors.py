"""What a call to another service can fail with, as typed exceptions.

They are :class:`~servicekit.errors.AppError` subclasses: an endpoint that lets one through
answers problem+json (502 for an upstream's refusal, 503 when it cannot be reached) with
the upstream named, instead of a 500.
"""

from __future__ import annotations

from typing import Any

from servicekit.errors import AppError


class UpstreamError(AppError):
    """Base of every failure of a call to ``upstream``."""

    status_code = 502
    code = "upstream_error"
    message = "A service this request depends on failed."

    def __init__(self, upstream: str, message: str | None = None) -> None:
        super().__init__(message, extra={"upstream": upstream})
        self.upstream = upstream


class UpstreamProblem(UpstreamError):
    """The upstream answered an error (its problem+json document, when it sent one).

    ``status`` and ``problem_code`` are the upstream's own (e.g. 404 ``user_not_found``), so
    callers branch on them; the request is not retried.
    """

    def __init__(self, upstream: str, status: int, problem: dict[str, Any]) -> None:
        code = problem.get("error") or problem.get("title") or f"http_{status}"
        super().__init__(upstream, f"{upstream} answered {status} {code}.")
        self.status = status
        self.problem_code = str(code)
        self.problem = problem


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached, timed out or kept failing (after the retries)."""

    status_code = 503
    code = "upstream_unavailable"
    message = "A service this request depends on is unavailable; retry shortly."


class CircuitOpen(UpstreamUnavailable):
    """The upstream's circuit breaker is open: the call failed fast, without being sent."""

    code = "upstream_circuit_open"


class CredentialsRejected(UpstreamError):
    """The token endpoint refused this service's client credentials (e.g. a disabled client)."""

    code = "upstream_credentials_rejected"

    def __init__(self, upstream: str, error: str) -> None:
        super().__init__(upstream, f"The token endpoint refused the client credentials: {error}.")
        self.error = error
