"""``/users``: registration and the signed-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from servicekit.auth import InsufficientUserAuthentication, InvalidToken, NotAuthenticated
from servicekit.db import read_connection_source
from servicekit.deps import rate_limit
from servicekit.errors import PreconditionFailed
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.deps import (
    BEARER_SECURITY,
    Accounts,
    CurrentUser,
    DbSession,
    Idempotency,
    IfMatch,
    RecentPrincipal,
    Registration,
    current_snapshot,
)
from user_service.errors import (
    EmailAlreadyRegistered,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    PasswordPolicyViolation,
    WrongPassword,
)
from user_service.models import User
from user_service.schemas.user import (
    PasswordConfirmation,
    UserCreate,
    UserRead,
    UserSnapshot,
    UserUpdate,
    user_etag,
)

router = APIRouter(prefix="/users", tags=["users"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)


def _with_etag(user: User, response: Response) -> UserRead:
    response.headers["ETag"] = user_etag(user)
    return UserRead.model_validate(user)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(rate_limit("register_ip"))],
    responses=problem_responses(
        EmailAlreadyRegistered,
        IdempotencyKeyInUse,
        IdempotencyKeyMismatch,
        PasswordPolicyViolation,
        RateLimited,
        RateLimitUnavailable,
        422,
    ),
)
async def register(
    body: UserCreate,
    session: DbSession,
    registration: Registration,
    response: Response,
    idempotent: Idempotency,
) -> UserRead:
    """Register a new account; send an ``Idempotency-Key`` to retry safely.

    In the enumeration-safe mode (on in production) a registered address is answered like
    a new one, and its owner is mailed instead of the 409.
    """
    user = await registration.register(
        session, email=body.email, password=body.password, full_name=body.full_name
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return await idempotent.remember(_with_etag(user, response), response)


@router.get(
    "/me",
    response_model=UserRead,
    responses=problem_responses(*_AUTH_ERRORS),
    openapi_extra=BEARER_SECURITY,
)
async def read_me(request: Request) -> Response:
    """The signed-in user's account; ``ETag`` carries its version for ``If-Match``."""
    # The hottest route: no dependencies for FastAPI to solve (measured: 7 % of its
    # throughput), and the cached snapshot's JSON reused rather than serialised again.
    return SnapshotResponse(await current_snapshot(request, read_connection_source(request)))


class SnapshotResponse(Response):
    """A cached user as ``UserRead`` JSON with its ``ETag``.

    Body and headers are encoded once per snapshot, not on every response as
    ``Response.__init__`` would.
    """

    media_type = "application/json"

    def __init__(self, user: UserSnapshot) -> None:
        self.status_code = 200
        self.background = None
        self.body, headers = user.as_response()
        self.raw_headers = list(headers)  # a copy: middleware appends to it


@router.patch("/me", responses=problem_responses(*_AUTH_ERRORS, PreconditionFailed, 422))
async def update_me(
    body: UserUpdate,
    user: CurrentUser,
    session: DbSession,
    accounts: Accounts,
    if_match: IfMatch,
    response: Response,
) -> UserRead:
    """Update the profile; send ``If-Match`` with the ``ETag`` read to avoid lost updates."""
    updated = await accounts.update_profile(
        session, user=user, full_name=body.full_name, if_match=if_match
    )
    return _with_etag(updated, response)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        *_AUTH_ERRORS, InsufficientUserAuthentication, WrongPassword, RateLimited, 422
    ),
)
async def delete_me(
    body: PasswordConfirmation,
    _recent: RecentPrincipal,
    user: CurrentUser,
    session: DbSession,
    accounts: Accounts,
) -> None:
    """Delete the account (password and a recent sign-in required); every session ends."""
    await accounts.delete(session, user=user, password=body.password)
