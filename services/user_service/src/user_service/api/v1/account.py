"""``/auth``: email verification and password reset through emailed links."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from servicekit.deps import rate_limit
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.deps import AccountRecovery, DbSession, Idempotency
from user_service.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    InvalidOrExpiredLink,
    PasswordPolicyViolation,
)
from user_service.schemas.account import (
    EmailLinkRequest,
    LinkRequested,
    PasswordResetConfirm,
    VerifyEmailConfirm,
)
from user_service.schemas.user import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/verify-email/request",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(rate_limit("verify_email_ip"))],
    responses=problem_responses(RateLimited, RateLimitUnavailable, 422),
)
async def request_email_verification(
    body: EmailLinkRequest, session: DbSession, recovery: AccountRecovery
) -> LinkRequested:
    """Mail a verification link.

    The answer is the same whether or not the address is registered (or already verified).
    """
    await recovery.request_verification(session, email=body.email)
    return LinkRequested()


@router.post("/verify-email/confirm", responses=problem_responses(InvalidOrExpiredLink, 422))
async def confirm_email_verification(
    body: VerifyEmailConfirm, session: DbSession, recovery: AccountRecovery
) -> UserRead:
    """Redeem a verification link's token; returns the now verified account."""
    user = await recovery.confirm_verification(session, token=body.token)
    return UserRead.model_validate(user)


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(rate_limit("password_reset_ip"))],
    responses=problem_responses(
        IdempotencyKeyInUse, IdempotencyKeyMismatch, RateLimited, RateLimitUnavailable, 422
    ),
)
async def request_password_reset(
    body: EmailLinkRequest,
    session: DbSession,
    recovery: AccountRecovery,
    response: Response,
    idempotent: Idempotency,
) -> LinkRequested:
    """Mail a password-reset link.

    The answer is the same whether or not the address is registered. A retry with the same
    ``Idempotency-Key`` sends no second mail.
    """
    await recovery.request_password_reset(session, email=body.email)
    return await idempotent.remember(LinkRequested(), response)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(InvalidOrExpiredLink, PasswordPolicyViolation, 422),
)
async def confirm_password_reset(
    body: PasswordResetConfirm, session: DbSession, recovery: AccountRecovery
) -> None:
    """Set a new password with a reset link's token; every session of the account ends."""
    await recovery.reset_password(session, token=body.token, new_password=body.new_password)
