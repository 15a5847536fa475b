"""Queries on ``oauth_clients``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from servicekit.db.repository import ReadRepository, Repository
from user_service.models import OAuthClient

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence
    from datetime import datetime


class OAuthClientRepository(Repository[OAuthClient]):
    """Registered clients by id."""

    model = OAuthClient

    async def get_locked(self, client_id: str) -> OAuthClient | None:
        """The client, its row locked until commit (a secret rotation or a disable)."""
        return await self.get_one_or_none(
            self.select().where(OAuthClient.id == client_id).with_for_update()
        )

    async def all(self) -> Sequence[OAuthClient]:
        """Every client, by id."""
        return await self.list(self.select().order_by(OAuthClient.id))


class DisabledClientReader(ReadRepository[OAuthClient]):
    """Disabled clients' revocation ids (the denylist's rebuild and fallback read these)."""

    model = OAuthClient

    async def disabled_since(self, since: datetime) -> Sequence[tuple[uuid.UUID, datetime]]:
        """Revocation ids of clients disabled at or after ``since``."""
        result = await self.session.execute(
            select(OAuthClient.revocation_id, OAuthClient.disabled_at).where(
                OAuthClient.disabled_at >= since
            )
        )
        return [(row[0], row[1]) for row in result.all() if row[1] is not None]

    async def is_disabled(self, revocation_id: uuid.UUID) -> bool | None:
        """Whether the client of this revocation id is disabled; ``None``: no such client."""
        result = await self.session.execute(
            select(OAuthClient.enabled).where(OAuthClient.revocation_id == revocation_id)
        )
        row = result.first()
        return None if row is None else not row[0]
