"""What a verified access token says about its bearer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.auth.errors import UserTokenRequired

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The subject of a verified, unrevoked access token (RFC 9068).

    A user's token has the user's id as ``sub``; a service's own token (the client
    credentials grant) has the client as ``sub`` (RFC 9068 §2.2), so ``sub == client_id``.
    """

    subject: str
    session_id: uuid.UUID
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime
    #: The OAuth client the token was issued to.
    client_id: str

    @property
    def is_service(self) -> bool:
        """Whether the token is a service's own, acting for no user."""
        return self.subject == self.client_id

    @property
    def user_id(self) -> uuid.UUID:
        """The user the token acts for; a service token raises :class:`UserTokenRequired`."""
        if self.is_service:
            raise UserTokenRequired
        return uuid.UUID(self.subject)

    def has_scopes(self, *required: str) -> bool:
        """True when every scope in ``required`` was granted."""
        return set(required) <= self.scopes
