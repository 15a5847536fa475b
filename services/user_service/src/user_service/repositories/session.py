"""Queries on ``sessions`` and ``rotated_refresh_tokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from servicekit.db.repository import ReadRepository, Repository
from user_service.models import RotatedRefreshToken, Session

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence
    from datetime import datetime


class SessionRepository(Repository[Session]):
    """Sessions by id, by refresh-token hash, and their revocation."""

    model = Session

    async def get_by_refresh_hash(self, token_hash: str, *, lock: bool) -> Session | None:
        """The session whose *current* refresh token has this hash.

        ``lock`` takes a row lock (``SELECT … FOR UPDATE`` on PostgreSQL) so concurrent
        refreshes serialise.
        """
        statement = self.select().where(Session.refresh_token_hash == token_hash)
        if lock:
            statement = statement.with_for_update()
        return await self.get_one_or_none(statement)

    async def get_rotated(self, token_hash: str) -> RotatedRefreshToken | None:
        """The record of a refresh token that was already exchanged, if any."""
        result = await self.session.execute(
            select(RotatedRefreshToken).where(RotatedRefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def get_locked(self, session_id: uuid.UUID) -> Session | None:
        """The session by id, row-locked."""
        return await self.get_one_or_none(
            self.select().where(Session.id == session_id).with_for_update()
        )

    async def add_rotated(self, token_hash: str, session_id: uuid.UUID, at: datetime) -> None:
        """Remember that ``token_hash`` was exchanged."""
        self.session.add(
            RotatedRefreshToken(token_hash=token_hash, session_id=session_id, rotated_at=at)
        )
        await self.session.flush()

    async def list_active(self, user_id: uuid.UUID, now: datetime) -> Sequence[Session]:
        """The user's unrevoked, unexpired sessions, most recently used first."""
        return await self.list(
            self.select()
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
            .order_by(Session.last_used_at.desc())
        )

    async def revoke(
        self,
        *,
        user_id: uuid.UUID,
        reason: str,
        now: datetime,
        session_ids: Sequence[uuid.UUID] | None = None,
        except_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke the user's active sessions (all, or ``session_ids``); returns their ids."""
        statement = (
            update(Session)
            .where(Session.user_id == user_id, Session.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
            .returning(Session.id)
        )
        if session_ids is not None:
            statement = statement.where(Session.id.in_(session_ids))
        if except_id is not None:
            statement = statement.where(Session.id != except_id)
        result = await self.session.execute(statement.execution_options(synchronize_session=False))
        return list(result.scalars().all())


class RevokedSessionReader(ReadRepository[Session]):
    """Revocation reads, on any session (the denylist's rebuild and fallback read only)."""

    model = Session

    async def revoked_since(self, since: datetime) -> Sequence[tuple[uuid.UUID, datetime]]:
        """Sessions revoked at or after ``since`` (to rebuild the denylist)."""
        result = await self.session.execute(
            select(Session.id, Session.revoked_at).where(Session.revoked_at >= since)
        )
        return [(row[0], row[1]) for row in result.all() if row[1] is not None]

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        """Whether the session is revoked or missing (the denylist's fallback)."""
        result = await self.session.execute(
            select(Session.revoked_at).where(Session.id == session_id)
        )
        row = result.first()
        return row is None or row[0] is not None
