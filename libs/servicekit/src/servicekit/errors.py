"""The domain error base every service raises, and the errors the chassis itself raises.

Services raise subclasses of :class:`AppError`; :mod:`servicekit.http.error_handlers` maps
them, ``HTTPException``, request-validation and database errors to RFC 9457 problem
documents in exactly one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping


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
    """PostgreSQL aborted the transaction to resolve a deadlock or a serialization conflict.

    The other party is a concurrent transaction; nothing was written, and the same request may
    succeed at once.
    """

    code = "transaction_conflict"
    message = "The request collided with a concurrent one and was rolled back; retry it."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "0"})


class UnstorableText(AppError):
    """Input text the database cannot hold (a NUL character, say), in any field."""

    status_code = 422
    code = "unstorable_text"
    message = "The request contains characters that cannot be stored, such as NUL."
