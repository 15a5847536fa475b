"""One error shape for everything: RFC 9457 ``application/problem+json``.

Services raise subclasses of :class:`AppError`; :mod:`servicekit.error_handlers` maps them,
``HTTPException``, request-validation and database errors to problem documents in exactly
one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from sqlalchemy import exc as sa_exc
from starlette.responses import Response

from servicekit.context import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:"


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


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached, or no pooled connection became free in time."""

    code = "database_unavailable"
    message = "The database is unavailable right now; retry shortly."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class DatabaseTimeout(DatabaseUnavailable):
    """A statement ran past the configured statement timeout and was cancelled."""

    code = "database_timeout"
    message = "The database did not answer in time; retry shortly."


class TransactionConflict(ServiceUnavailable):
    """PostgreSQL aborted the transaction to resolve a deadlock or a serialization conflict
    with a concurrent one; nothing was written, and the same request may succeed at once."""

    code = "transaction_conflict"
    message = "The request collided with a concurrent one and was rolled back; retry it."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "0"})


class UnstorableText(AppError):
    """Input text the database cannot hold (a NUL character, say), in any field."""

    status_code = 422
    code = "unstorable_text"
    message = "The request contains characters that cannot be stored, such as NUL."


#: SQLSTATEs of text PostgreSQL cannot take: character not in repertoire (NUL in UTF-8),
#: untranslatable character. Input the client sent, answered 422 whichever field held it.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
#: SQLSTATEs meaning "the server is going away or cannot take a connection": admin shutdown,
#: crash shutdown, cannot connect now, too many connections. Class 08 is "connection exception".
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"  # statement_timeout fired
#: serialization_failure, deadlock_detected: the transaction was rolled back, retryable.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})


def database_error(exc: BaseException) -> AppError | None:
    """The problem a database failure is answered with, or ``None`` for a real bug.

    Unavailability (refused or dropped connections, a pool timeout, a server shutting down)
    and a statement timeout are the dependency's fault, answered 503 with ``Retry-After``,
    as is a transaction PostgreSQL rolled back to break a deadlock (retry at once);
    text the database cannot store is the client's, answered 422; anything else (an
    unexpected constraint violation, bad SQL) stays a 500.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection free within the timeout
        return DatabaseUnavailable("No database connection became available in time.")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate == _QUERY_CANCELED:
        return DatabaseTimeout()
    if sqlstate in _UNSTORABLE_TEXT_SQLSTATES:
        return UnstorableText()
    if sqlstate in _CONFLICT_SQLSTATES:
        return TransactionConflict()
    if (
        exc.connection_invalidated
        or isinstance(exc.orig, OSError | TimeoutError)
        or (
            isinstance(sqlstate, str)
            and (sqlstate[:2] == "08" or sqlstate in _UNAVAILABLE_SQLSTATES)
        )
    ):
        return DatabaseUnavailable()
    return None


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
        "title": title(status),
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


def title(status: int) -> str:
    """The status code's reason phrase."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
            "description": f"{title(status)} (error: {', '.join(sorted(set(codes)))})",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, codes in by_status.items()
    }
