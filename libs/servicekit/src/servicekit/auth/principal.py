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
    #: When the user last authenticated in this session (``auth_time``; ``None``: unknown).
    auth_time: datetime | None = None
    #: How (RFC 8176 ``amr``): ``("pwd",)``, ``("pwd", "otp")``.
    amr: tuple[str, ...] = ()

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

    def authenticated_within(self, max_age_s: int, now: datetime) -> bool:
        """Whether the user authenticated at most ``max_age_s`` before ``now`` (RFC 9470)."""
        if self.auth_time is None:
            return False
        return (now - self.auth_time).total_seconds() <= max_age_s

    def has_scopes(self, *required: str) -> bool:
        """True when every scope in ``required`` was granted."""
        return set(required) <= self.scopes
