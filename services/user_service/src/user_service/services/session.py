"""A user's own sessions: list them, revoke one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from user_service.errors import SessionNotFound
from user_service.repositories import SessionRepository

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence

    from servicekit.db import AsyncSession
    from user_service.models import Session
    from user_service.services.revocation import SessionRevoker


@dataclass(frozen=True, slots=True)
class SessionService:
    """Session listing and revocation for the signed-in user."""

    revoker: SessionRevoker

    async def list_active(self, session: AsyncSession, *, user_id: uuid.UUID) -> Sequence[Session]:
        """Unrevoked, unexpired sessions, most recently used first."""
        return await SessionRepository.from_session(session).list_active(user_id, utcnow())

    async def revoke(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
    ) -> None:
        """Revoke one of the user's sessions; another user's id is simply not found."""
        revoked = await self.revoker.revoke(
            session, user_id=user_id, session_ids=[session_id], reason="revoked_by_user"
        )
        if not revoked:
            raise SessionNotFound
