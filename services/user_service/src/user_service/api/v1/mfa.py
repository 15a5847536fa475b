"""``/users/me/mfa``: TOTP enrolment, switching it off, and recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, status

from servicekit.auth import InsufficientUserAuthentication, InvalidToken, NotAuthenticated
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.deps import CurrentUser, DbSession, Mfa, RecentPrincipal
from user_service.errors import (
    InvalidMfaCode,
    MfaAlreadyEnabled,
    MfaEnrolmentNotStarted,
    MfaNotEnabled,
    WrongPassword,
)
from user_service.schemas.mfa import RecoveryCodes, TotpConfirm, TotpDisable, TotpEnrolment

router = APIRouter(prefix="/users/me/mfa", tags=["mfa"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)
#: A locked account answers 429 (the lockout), and 503 when it cannot be checked.
_GUESS_ERRORS = (InvalidMfaCode, RateLimited, RateLimitUnavailable)


@router.post(
    "/totp",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_AUTH_ERRORS, MfaAlreadyEnabled),
)
async def start_totp_enrolment(user: CurrentUser, session: DbSession, mfa: Mfa) -> TotpEnrolment:
    """Start TOTP enrolment: a new secret for the authenticator app (not on until confirmed)."""
    enrolment = await mfa.start_enrolment(session, user)
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/totp/confirm",
    responses=problem_responses(
        *_AUTH_ERRORS, *_GUESS_ERRORS, MfaAlreadyEnabled, MfaEnrolmentNotStarted, 422
    ),
)
async def confirm_totp(
    body: TotpConfirm, user: CurrentUser, session: DbSession, mfa: Mfa
) -> RecoveryCodes:
    """Switch TOTP on with a code from the app; answers the recovery codes, shown once."""
    return RecoveryCodes(recovery_codes=await mfa.confirm(session, user, body.code))


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        *_AUTH_ERRORS,
        *_GUESS_ERRORS,
        InsufficientUserAuthentication,
        WrongPassword,
        MfaNotEnabled,
        422,
    ),
)
async def disable_totp(
    body: TotpDisable, _recent: RecentPrincipal, user: CurrentUser, session: DbSession, mfa: Mfa
) -> None:
    """Switch TOTP off, with the password and a code; needs a recent sign-in."""
    await mfa.disable(session, user, password=body.password, code=body.code)


@router.post(
    "/recovery-codes",
    responses=problem_responses(*_AUTH_ERRORS, InsufficientUserAuthentication, MfaNotEnabled),
)
async def regenerate_recovery_codes(
    _recent: RecentPrincipal, user: CurrentUser, session: DbSession, mfa: Mfa
) -> RecoveryCodes:
    """Replace the recovery codes (the old ones stop working); needs a recent sign-in."""
    return RecoveryCodes(recovery_codes=await mfa.regenerate_recovery_codes(session, user))
