"""Mail preferences: optional kinds can be switched off, security notices cannot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notification_service.errors import SecurityMailRequired, UnknownMailKind
from notification_service.repositories import PreferencesRepository
from notification_service.schemas.api import MailKindRead, PreferencesRead
from notification_service.services.kinds import KINDS

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession


async def read_preferences(session: AsyncSession, user_id: uuid.UUID) -> PreferencesRead:
    """Every kind of mail and whether ``user_id`` receives it."""
    return _view(await PreferencesRepository.from_session(session).muted(user_id))


async def update_preferences(
    session: AsyncSession, user_id: uuid.UUID, muted: list[str]
) -> PreferencesRead:
    """Switch the ``muted`` kinds off and every other kind on."""
    for name in muted:
        kind = KINDS.get(name)
        if kind is None:
            raise UnknownMailKind(f"No kind of mail is called {name!r}.")
        if kind.security:
            raise SecurityMailRequired(f"{name!r} is a security notice; it is always sent.")
    saved = await PreferencesRepository.from_session(session).set_muted(user_id, frozenset(muted))
    return _view(frozenset(saved.muted_kinds))


def _view(muted: frozenset[str]) -> PreferencesRead:
    return PreferencesRead(
        kinds=[
            MailKindRead(kind=name, security=kind.security, enabled=name not in muted)
            for name, kind in KINDS.items()
        ]
    )
