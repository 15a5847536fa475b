"""Queries on ``email_tokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete

from servicekit.db.repository import Repository
from user_service.models import EmailToken, TokenPurpose

if TYPE_CHECKING:
    import uuid


class EmailTokenRepository(Repository[EmailToken]):
    """Emailed tokens by hash, and their replacement by newer ones."""

    model = EmailToken

    async def get_locked(self, token_hash: str, purpose: TokenPurpose) -> EmailToken | None:
        """The token of ``purpose`` with this hash, row-locked.

        The lock (``SELECT … FOR UPDATE`` on PostgreSQL) makes concurrent confirmations of one
        token serialise.
        """
        return await self.get_one_or_none(
            self.select()
            .where(EmailToken.token_hash == token_hash, EmailToken.purpose == purpose)
            .with_for_update()
        )

    async def discard(self, *, user_id: uuid.UUID, purpose: TokenPurpose) -> int:
        """Delete the user's tokens of ``purpose``; returns how many there were."""
        result = await self.session.execute(
            delete(EmailToken)
            .where(EmailToken.user_id == user_id, EmailToken.purpose == purpose)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
