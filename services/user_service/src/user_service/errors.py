"""Domain errors of the user service; mapped to problem+json by the chassis."""

from __future__ import annotations

from servicekit.errors import AppError, Conflict, NotFound


class UserNotFound(NotFound):
    """No user with that id."""

    code = "user_not_found"
    message = "No such user."


class EmailAlreadyRegistered(Conflict):
    """The (normalised) email is taken."""

    code = "email_already_registered"
    message = "This email address is already registered."


class PasswordPolicyViolation(AppError):
    """The password breaks the configured policy."""

    status_code = 422
    code = "password_policy"
    message = "The password does not meet the password policy."


class InvalidCredentials(AppError):
    """Wrong email or password — deliberately not saying which."""

    status_code = 401
    code = "invalid_credentials"
    message = "Incorrect email or password."

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class InvalidGrant(AppError):
    """The refresh token is unknown, expired, revoked or was reused."""

    status_code = 401
    code = "invalid_grant"
    message = "The refresh token is invalid, expired or revoked; sign in again."


class RefreshTokenReuse(InvalidGrant):
    """A rotated-out refresh token came back: its session was revoked (and stays revoked)."""

    commit_changes = True
