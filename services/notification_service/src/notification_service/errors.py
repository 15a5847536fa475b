"""Domain errors of the notification service; mapped to problem+json by the chassis."""

from __future__ import annotations

from servicekit.errors import AppError, Conflict, NotFound


class DeliveryNotFound(NotFound):
    """No delivery with that id."""

    code = "delivery_not_found"
    message = "No such delivery."


class DeliveryNotRetryable(Conflict):
    """Only a failed delivery can be retried."""

    code = "delivery_not_failed"
    message = "Only a failed delivery can be retried."


class SecurityMailRequired(AppError):
    """Security notices cannot be switched off."""

    status_code = 422
    code = "security_mail_required"
    message = "Security notices cannot be switched off."


class UnknownMailKind(AppError):
    """A preference names no kind of mail this service sends."""

    status_code = 422
    code = "unknown_mail_kind"
    message = "No such kind of mail."
