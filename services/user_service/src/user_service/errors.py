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
    """Wrong email or password — deliberately not saying which.

    The failed attempt's audit row commits.
    """

    status_code = 401
    code = "invalid_credentials"
    message = "Incorrect email or password."
    commit_changes = True

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


class SessionNotFound(NotFound):
    """No such session for this user."""

    code = "session_not_found"
    message = "No such session."


class WrongPassword(AppError):
    """The current password given to confirm a sensitive change is wrong.

    It counts toward the account's lockout, and its audit row commits.
    """

    status_code = 403
    code = "wrong_password"
    message = "The current password is not correct."
    commit_changes = True


class EmailUnchanged(AppError):
    """An email change to the address the account already has."""

    status_code = 400
    code = "email_unchanged"
    message = "This is already the account's email address."


class EmailNotVerified(AppError):
    """``auth.require_verified_email`` is on and the account's address is not verified."""

    status_code = 403
    code = "email_not_verified"
    message = "Verify your email address before signing in; request a new link if needed."


class MfaRequired(AppError):
    """The password was right; the second step (``/auth/mfa/verify``) needs a code.

    Commits: the challenge behind ``mfa_token`` must outlive this answer.
    """

    status_code = 403
    code = "mfa_required"
    message = "A second factor is required: send a code with the mfa_token."
    commit_changes = True

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        super().__init__(
            extra={"error": self.code, "mfa_token": mfa_token, "expires_in": expires_in}
        )


class InvalidMfaToken(AppError):
    """The ``mfa_token`` is unknown, expired or was already used."""

    status_code = 401
    code = "invalid_mfa_token"
    message = "The mfa_token is invalid, expired or already used; sign in again."

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class InvalidMfaCode(AppError):
    """A TOTP or recovery code is wrong (or was already used); counts toward the lockout."""

    status_code = 401
    code = "invalid_mfa_code"
    message = "The code is not correct, or was already used."
    commit_changes = True

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class MfaCodeRequired(AppError):
    """Multi-factor authentication is on: the operation needs a code as well."""

    status_code = 400
    code = "mfa_code_required"
    message = "Multi-factor authentication is on for this account: send a code too."


class MfaAlreadyEnabled(Conflict):
    """TOTP is already on; switch it off first to enrol a new authenticator."""

    code = "mfa_already_enabled"
    message = "Multi-factor authentication is already on; switch it off first."


class MfaNotEnabled(Conflict):
    """TOTP is off (or its enrolment was never started)."""

    code = "mfa_not_enabled"
    message = "Multi-factor authentication is not on for this account."


class MfaEnrolmentNotStarted(Conflict):
    """A confirmation arrived without an enrolment in progress."""

    code = "mfa_enrolment_not_started"
    message = "Start the enrolment first (POST /api/v1/users/me/mfa/totp)."


class InvalidClient(AppError):
    """Client credentials are missing, malformed or wrong, or the client is disabled."""

    status_code = 401
    code = "invalid_client"
    message = "Client authentication failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Basic realm="oauth"'})


class InvalidRequest(AppError):
    """An OAuth request misses a parameter or repeats one (RFC 6749 §5.2)."""

    status_code = 400
    code = "invalid_request"
    message = "The request is missing a required parameter or is otherwise malformed."


class UnsupportedGrantType(AppError):
    """The token endpoint does not know this ``grant_type``."""

    status_code = 400
    code = "unsupported_grant_type"
    message = "The grant type is not supported: use password, refresh_token or client_credentials."


class UnauthorizedClient(AppError):
    """The client is not allowed to use this grant type."""

    status_code = 400
    code = "unauthorized_client"
    message = "This client may not use this grant type."


class InvalidScope(AppError):
    """The requested scope is unknown or exceeds what the client or user may have."""

    status_code = 400
    code = "invalid_scope"
    message = "The requested scope is invalid or exceeds what was granted."


class CannotModifySelf(Conflict):
    """An administrator tried to demote, deactivate or delete their own account."""

    code = "cannot_modify_self"
    message = (
        "Administrators cannot demote, deactivate or delete their own account; "
        "ask another administrator."
    )


class InvalidOrExpiredLink(AppError):
    """An emailed verification or reset token is unknown, expired or already used."""

    status_code = 400
    code = "invalid_or_expired_link"
    message = "This link is invalid, has expired or was already used; request a new one."


class IdempotencyKeyMismatch(AppError):
    """An ``Idempotency-Key`` came back with a different request body."""

    status_code = 422
    code = "idempotency_key_mismatch"
    message = "This Idempotency-Key was used for a different request; use a new key."


class IdempotencyKeyInUse(Conflict):
    """Another request with this ``Idempotency-Key`` has not finished."""

    code = "idempotency_key_in_use"
    message = "A request with this Idempotency-Key is still in progress; retry shortly."


class ClientNotFound(NotFound):
    """No OAuth client with that id."""

    code = "client_not_found"
    message = "No such OAuth client."


class ClientAlreadyRegistered(Conflict):
    """An OAuth client with that id exists (disabled ones included)."""

    code = "client_already_registered"
    message = "An OAuth client with this id already exists."
