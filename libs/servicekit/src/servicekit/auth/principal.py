"""What a verified access token says about its bearer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The subject of a verified, unrevoked access token."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime

    def has_scopes(self, *required: str) -> bool:
        """True when every scope in ``required`` was granted."""
        return set(required) <= self.scopes
