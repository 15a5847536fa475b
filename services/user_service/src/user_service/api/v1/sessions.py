"""``/users/me/sessions``: the signed-in user's devices."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from servicekit.auth import InvalidToken, NotAuthenticated
from servicekit.http import problem_responses
from user_service.deps import CurrentPrincipal, DbSession, UserSessions
from user_service.errors import SessionNotFound
from user_service.schemas.user import SessionRead

router = APIRouter(prefix="/users/me/sessions", tags=["sessions"])


@router.get("", responses=problem_responses(NotAuthenticated, InvalidToken))
async def list_sessions(
    principal: CurrentPrincipal, session: DbSession, user_sessions: UserSessions
) -> list[SessionRead]:
    """Active sessions, most recently used first; the current one is marked."""
    records = await user_sessions.list_active(session, user_id=principal.user_id)
    return [
        SessionRead(
            id=r.id,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            expires_at=r.expires_at,
            user_agent=r.user_agent,
            ip=r.ip,
            current=r.id == principal.session_id,
        )
        for r in records
    ]


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotAuthenticated, InvalidToken, SessionNotFound),
)
async def revoke_session(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: DbSession,
    user_sessions: UserSessions,
) -> None:
    """Sign out one device; its tokens stop working at once."""
    await user_sessions.revoke(session, user_id=principal.user_id, session_id=session_id)
