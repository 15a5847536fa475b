"""``/users`` for administrators: list, read, change and delete any account.

Every route needs the ``admin`` scope. ``GET`` and ``PATCH`` of one user return its
version as a strong ``ETag``; ``PATCH`` and ``DELETE`` honour ``If-Match`` (RFC 9110
§13.1.1) so two administrators never overwrite each other's changes unseen.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from servicekit.auth import InsufficientScope, InvalidToken, NotAuthenticated
from servicekit.db.pagination import InvalidCursor
from servicekit.errors import PreconditionFailed
from servicekit.http import problem_responses
from user_service.api.v1.users import SnapshotResponse
from user_service.deps import (
    AdminPrincipal,
    DbSession,
    IfMatch,
    Mfa,
    ReadConnections,
    UserAdmin,
    UserReader,
)
from user_service.errors import CannotModifySelf, MfaNotEnabled, UserNotFound
from user_service.schemas.admin import UserAdminUpdate, UserListQuery, UserPage
from user_service.schemas.user import UserRead, user_etag

router = APIRouter(prefix="/users", tags=["admin"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken, InsufficientScope)
_ETAG: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"ETag": {"description": "The user's version.", "schema": {"type": "string"}}}}
}


@router.get("", responses=problem_responses(*_AUTH_ERRORS, InvalidCursor, 422))
async def list_users(
    _admin: AdminPrincipal,
    session: DbSession,
    admin: UserAdmin,
    query: Annotated[UserListQuery, Query()],
) -> UserPage:
    """List users by creation time, filtered; follow `next_cursor` for the next page."""
    page = await admin.list_users(
        session,
        limit=query.limit,
        descending=query.descending,
        cursor=query.cursor,
        email_prefix=query.email_prefix,
        is_active=query.is_active,
        is_verified=query.is_verified,
        role=query.role,
    )
    return UserPage.of(page)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    responses={**problem_responses(*_AUTH_ERRORS, UserNotFound, 422), **_ETAG},
)
async def get_user(
    user_id: uuid.UUID, _reader: UserReader, connections: ReadConnections, admin: UserAdmin
) -> Response:
    """Any user's account (administrators, or services granted `users:read`)."""
    return SnapshotResponse(await admin.get_user(connections, user_id))


@router.patch(
    "/{user_id}",
    responses={
        **problem_responses(*_AUTH_ERRORS, UserNotFound, CannotModifySelf, PreconditionFailed, 422),
        **_ETAG,
    },
)
async def update_user(
    user_id: uuid.UUID,
    body: UserAdminUpdate,
    principal: AdminPrincipal,
    session: DbSession,
    admin: UserAdmin,
    response: Response,
    if_match: IfMatch,
) -> UserRead:
    """Change a user's role, active or verified flag; deactivation revokes every session."""
    user = await admin.update_user(
        session,
        actor_id=principal.user_id,
        user_id=user_id,
        if_match=if_match,
        role=body.role,
        is_active=body.is_active,
        is_verified=body.is_verified,
    )
    response.headers["ETag"] = user_etag(user)
    return UserRead.model_validate(user)


@router.delete(
    "/{user_id}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*_AUTH_ERRORS, MfaNotEnabled, 422),
)
async def reset_user_mfa(
    user_id: uuid.UUID, principal: AdminPrincipal, session: DbSession, mfa: Mfa
) -> None:
    """Switch a user's TOTP off (a lost authenticator); audited, and the user is mailed."""
    await mfa.reset(session, actor_id=principal.user_id, user_id=user_id)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        *_AUTH_ERRORS, UserNotFound, CannotModifySelf, PreconditionFailed, 422
    ),
)
async def delete_user(
    user_id: uuid.UUID,
    principal: AdminPrincipal,
    session: DbSession,
    admin: UserAdmin,
    if_match: IfMatch,
) -> None:
    """Delete a user and their sessions; their tokens stop working at once."""
    await admin.delete_user(session, actor_id=principal.user_id, user_id=user_id, if_match=if_match)
