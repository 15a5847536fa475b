"""``/users``: registration and the signed-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from servicekit.auth import InvalidToken, NotAuthenticated
from servicekit.errors import problem_responses
from user_service.deps import CurrentUser, DbSession, Identity
from user_service.errors import EmailAlreadyRegistered, PasswordPolicyViolation
from user_service.schemas.user import UserCreate, UserRead
from user_service.services.user import users

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(EmailAlreadyRegistered, PasswordPolicyViolation, 422),
)
async def register(
    body: UserCreate, session: DbSession, ctx: Identity, response: Response
) -> UserRead:
    """Register a new account."""
    user = await users.create(
        session, ctx.hasher, email=body.email, password=body.password, full_name=body.full_name
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserRead.model_validate(user)


@router.get("/me", responses=problem_responses(NotAuthenticated, InvalidToken))
async def read_me(user: CurrentUser) -> UserRead:
    """The signed-in user's account."""
    return UserRead.model_validate(user)
