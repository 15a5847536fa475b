"""Token verification plus the revocation check: what a request's bearer token proves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.auth.errors import InvalidToken

if TYPE_CHECKING:
    from servicekit.auth.denylist import SessionDenylist
    from servicekit.auth.principal import Principal
    from servicekit.auth.verifier import TokenVerifier


class Authenticator:
    """Verifies a bearer token locally, then checks its session against the denylist."""

    def __init__(self, verifier: TokenVerifier, denylist: SessionDenylist) -> None:
        self.verifier = verifier
        self.denylist = denylist

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid, unrevoked token; raises ``InvalidToken`` otherwise."""
        principal = await self.verifier.verify(token)
        if await self.denylist.is_revoked(principal.session_id):
            raise InvalidToken("The session of this access token has been revoked.")
        return principal
