"""Email change: the request (signed in, recent) and the confirmation from the link."""

from __future__ import annotations

from fastapi import APIRouter, status

from servicekit.auth import InsufficientUserAuthentication, InvalidToken, NotAuthenticated
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.deps import CurrentUser, DbSession, EmailChange, RecentPrincipal
from user_service.errors import (
    EmailAlreadyRegistered,
    EmailUnchanged,
    InvalidOrExpiredLink,
    WrongPassword,
)
from user_service.schemas.account import (
    EmailChangeConfirm,
    EmailChangeRequest,
    EmailChangeRequested,
)
from user_service.schemas.user import UserRead

router = APIRouter(tags=["users"])


@router.post(
    "/users/me/email-change",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        InsufficientUserAuthentication,
        WrongPassword,
        EmailUnchanged,
        EmailAlreadyRegistered,
        RateLimited,
        RateLimitUnavailable,
        422,
    ),
)
async def request_email_change(
    body: EmailChangeRequest,
    principal: RecentPrincipal,
    user: CurrentUser,
    session: DbSession,
    email_change: EmailChange,
) -> EmailChangeRequested:
    """Ask to move the account to a new address (password and a recent sign-in required).

    A confirmation link goes to the new address and a notice to the current one; the
    address changes only once the link is followed.
    """
    await email_change.request(
        session,
        user,
        new_email=body.new_email,
        password=body.password,
        session_id=principal.session_id,
    )
    return EmailChangeRequested()


@router.post(
    "/auth/email-change/confirm",
    responses=problem_responses(InvalidOrExpiredLink, EmailAlreadyRegistered, 422),
)
async def confirm_email_change(
    body: EmailChangeConfirm, session: DbSession, email_change: EmailChange
) -> UserRead:
    """Follow an email-change link: the account moves to the new address.

    Every session except the one that asked is signed out. 409 if another account took
    the address meanwhile; 400 for a used or expired link, or one a newer request replaced.
    """
    return UserRead.model_validate(await email_change.confirm(session, token=body.token))
