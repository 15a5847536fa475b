"""Authentication and authorisation errors (RFC 6750 ``WWW-Authenticate`` challenges)."""

from __future__ import annotations

from servicekit.errors import AppError


class NotAuthenticated(AppError):
    """No bearer token was presented."""

    status_code = 401
    code = "not_authenticated"
    message = "Authentication is required."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class InvalidToken(AppError):
    """The token is malformed, badly signed, expired, not yet valid or revoked."""

    status_code = 401
    code = "invalid_token"
    message = "The access token is invalid, expired or revoked."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class InsufficientScope(AppError):
    """The token is valid but lacks a required scope."""

    status_code = 403
    code = "insufficient_scope"
    message = "The access token does not grant the required scope."

    def __init__(self, required: str) -> None:
        super().__init__(
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{required}"'}
        )


class InsufficientUserAuthentication(AppError):
    """The operation needs a more recent authentication (RFC 9470 step-up).

    The client re-authenticates the user and retries with the new access token.
    """

    status_code = 401
    code = "insufficient_user_authentication"
    message = "This operation needs a recent sign-in: re-authenticate and retry."

    def __init__(self, max_age_s: int) -> None:
        challenge = (
            'Bearer error="insufficient_user_authentication", '
            'error_description="A more recent authentication is required", '
            f'max_age="{max_age_s}"'
        )
        super().__init__(headers={"WWW-Authenticate": challenge}, extra={"max_age": max_age_s})


class UserTokenRequired(AppError):
    """A service's own token (client credentials) was used where a user must act."""

    status_code = 403
    code = "user_token_required"
    message = "This operation acts for a user; a service token carries none."

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
