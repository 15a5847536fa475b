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
