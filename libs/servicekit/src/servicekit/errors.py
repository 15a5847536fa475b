"""One error shape for everything: RFC 9457 ``application/problem+json``.

Services raise subclasses of :class:`AppError`; :func:`install_error_handlers` maps them,
``HTTPException``, request-validation errors and unexpected exceptions to problem
documents in exactly one place. Unexpected exceptions are logged with the request id and
answered 500 without a trace, SQL or secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from servicekit.context import current_request_id
from servicekit.logging import get_logger

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:"

log = get_logger(__name__)


class AppError(Exception):
    """Base of every domain error: carries an HTTP status and a machine-readable code.

    Subclasses set ``status_code``, ``code`` and a default ``message`` as class attributes;
    ``headers`` lets an error add e.g. ``WWW-Authenticate`` or ``Retry-After``.
    """

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "The request could not be processed."
    #: Commit the request's transaction even though this error is answered: for failures
    #: whose side effects must persist (a session revoked on refresh-token reuse).
    commit_changes: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = message or self.message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class NotFound(AppError):
    """The addressed resource does not exist."""

    status_code = 404
    code = "not_found"
    message = "The requested resource was not found."


class Conflict(AppError):
    """The request conflicts with the current state (e.g. a unique key)."""

    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state of the resource."


class PreconditionFailed(AppError):
    """``If-Match`` names a version that is no longer current (or a concurrent write won)."""

    status_code = 412
    code = "precondition_failed"
    message = "The resource changed since it was read; fetch it again and retry."


class PayloadTooLarge(AppError):
    """The request body exceeds the configured limit."""

    status_code = 413
    code = "payload_too_large"
    message = "The request body is larger than the server accepts."


class ServiceUnavailable(AppError):
    """A dependency is down or the service is shutting down."""

    status_code = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable."


_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def code_for_status(status: int) -> str:
    """The default machine code for an HTTP status."""
    return _STATUS_CODES.get(status, "http_" + str(status))


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document with our ``error`` and ``request_id`` members."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": _title(status),
        "status": status,
        "detail": detail,
        "error": code,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A ready-to-send problem+json response."""
    body = problem_body(status=status, code=code, detail=detail, instance=instance, extra=extra)
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to what a client needs; input values are never echoed."""
    fields: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        fields.append(
            {
                "field": ".".join(
                    loc[1:]
                    if loc and loc[0] in {"body", "query", "path", "header", "cookie"}
                    else loc
                ),
                "location": loc[0] if loc else None,
                "message": err.get("msg", "invalid value"),
                "type": err.get("type", "value_error"),
            }
        )
    return fields


async def _app_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
    if exc.status_code >= 500:
        log.warning("request.failed", error=exc.code, detail=exc.detail)
    return problem_response(
        status=exc.status_code,
        code=exc.code,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    return problem_response(
        status=exc.status_code,
        code=code_for_status(exc.status_code),
        detail=detail,
        instance=request.url.path,
        headers=exc.headers,
    )


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return problem_response(
        status=422,
        code="validation_error",
        detail="The request is invalid; see `errors` for each field.",
        instance=request.url.path,
        extra={"errors": _field_errors(exc.errors())},
    )


def internal_error_response(path: str) -> Response:
    """The 500 answer for an unexpected exception: no trace, SQL or secret."""
    return problem_response(
        status=500,
        code="internal_error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
        instance=path,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``.

    Unexpected exceptions are not handled here: Starlette would answer them outside every
    middleware (no request id header). :class:`servicekit.middleware.RequestContextMiddleware`
    turns them into :func:`internal_error_response` instead.
    """
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)


def problem_responses(*errors: type[AppError] | int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json errors.

    Pass error classes (their status and code are listed) or bare status codes.
    """
    by_status: dict[int, list[str]] = {}
    for error in errors:
        status = error if isinstance(error, int) else error.status_code
        codes = by_status.setdefault(status, [])
        codes.append(code_for_status(status) if isinstance(error, int) else error.code)
    return {
        status: {
            "description": f"{_title(status)} (error: {', '.join(sorted(set(codes)))})",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, codes in by_status.items()
    }
