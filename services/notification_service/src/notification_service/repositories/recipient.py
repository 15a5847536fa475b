"""Recipients (address and name from the events) and their mail preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete

from notification_service.models import Preferences, Recipient
from servicekit.db import Repository

if TYPE_CHECKING:
    import uuid


class RecipientRepository(Repository[Recipient]):
    """SQL of the ``recipients`` table."""

    model = Recipient

    async def remember(
        self, user_id: uuid.UUID, *, email: str | None = None, full_name: str | None = None
    ) -> Recipient | None:
        """Record what an event says of a user (creating the row when an address is known)."""
        recipient = await self.get(user_id)
        if recipient is None:
            if email is None:
                return None
            recipient = await self.add(
                Recipient(user_id=user_id, email=email, full_name=full_name or "")
            )
        if email is not None:
            recipient.email = email
        if full_name is not None:
            recipient.full_name = full_name
        await self.flush()
        return recipient

    async def forget(self, user_id: uuid.UUID) -> None:
        """Delete the user's recipient row and preferences."""
        await self.session.execute(delete(Recipient).where(Recipient.user_id == user_id))
        await self.session.execute(delete(Preferences).where(Preferences.user_id == user_id))


class PreferencesRepository(Repository[Preferences]):
    """SQL of the ``preferences`` table."""

    model = Preferences

    async def muted(self, user_id: uuid.UUID) -> frozenset[str]:
        """The kinds the user switched off."""
        preferences = await self.get(user_id)
        return frozenset(preferences.muted_kinds) if preferences else frozenset()

    async def set_muted(self, user_id: uuid.UUID, kinds: frozenset[str]) -> Preferences:
        """Replace the kinds the user switched off."""
        preferences = await self.get(user_id)
        if preferences is None:
            preferences = await self.add(Preferences(user_id=user_id, muted_kinds=[]))
        preferences.muted_kinds = sorted(kinds)
        await self.flush()
        return preferences
