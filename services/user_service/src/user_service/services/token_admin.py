"""RFC 7009 token revocation and RFC 7662 token introspection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicekit.auth import Authenticator, InvalidToken
from servicekit.db.orm import utcnow
from user_service.errors import InvalidClient, UnauthorizedClient
from user_service.repositories import SessionRepository
from user_service.tokens import hash_token

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.config import JwtSettings
    from user_service.models import Session
    from user_service.services.oauth import PresentedClient
    from user_service.services.oauth_clients import OAuthClientService
    from user_service.services.revocation import SessionRevoker

REFRESH_HINT = "refresh_token"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenAdminService:
    """Revocation for clients, introspection for other services; never commits."""

    revoker: SessionRevoker
    authenticator: Authenticator
    jwt: JwtSettings
    clients: OAuthClientService
    first_party_client_id: str

    async def revoke(
        self,
        session: AsyncSession,
        *,
        caller: PresentedClient | None,
        token: str,
        hint: str | None,
    ) -> None:
        """Revoke the session behind a refresh or access token.

        A confidential client authenticates (RFC 7009 §2.1); first-party apps are public and
        send no secret. A client may revoke only tokens issued to it (``unauthorized_client``
        otherwise). Unknown tokens are ignored (RFC 7009 §2.2: the answer is the same, so it
        reveals nothing); so is a service's own token, which has no session (disable its
        client instead).
        """
        registered = await self.clients.caller(session, caller)
        caller_id = registered.id if registered else self.first_party_client_id
        record = await self._refresh_session(session, token)
        if record is not None:
            if (record.client_id or self.first_party_client_id) != caller_id:
                raise UnauthorizedClient("This token was issued to another client.")
            await self.revoker.revoke(
                session, user_id=record.user_id, session_ids=[record.id], reason="revoked"
            )
            return
        if hint == REFRESH_HINT:
            return
        try:
            principal = await self.authenticator.verifier.verify(token)
        except InvalidToken:
            return
        if principal.is_service:
            return
        if principal.client_id != caller_id:
            raise UnauthorizedClient("This token was issued to another client.")
        await self.revoker.revoke(
            session,
            user_id=principal.user_id,
            session_ids=[principal.session_id],
            reason="revoked",
        )

    async def introspect(
        self,
        session: AsyncSession,
        *,
        caller: PresentedClient | None,
        token: str,
        hint: str | None,
    ) -> dict[str, Any]:
        """What the token is and whether it is active (RFC 7662 §2.2).

        Only registered clients may ask; ``client_id`` is the client the token was issued
        to, not the caller.
        """
        if await self.clients.caller(session, caller) is None:
            raise InvalidClient
        if hint != REFRESH_HINT:
            try:
                principal = await self.authenticator.authenticate(token)
            except InvalidToken:
                pass
            else:
                return {
                    "active": True,
                    "token_type": "Bearer",
                    "sub": principal.subject,
                    "sid": str(principal.session_id),
                    "scope": " ".join(sorted(principal.scopes)),
                    "exp": int(principal.expires_at.timestamp()),
                    "jti": principal.token_id,
                    "iss": self.jwt.issuer,
                    "aud": self.jwt.audience,
                    "client_id": principal.client_id,
                }
        record = await self._refresh_session(session, token)
        if record is None or record.revoked_at is not None or record.expires_at <= utcnow():
            return {"active": False}
        return {
            "active": True,
            "sub": str(record.user_id),
            "sid": str(record.id),
            "exp": int(record.expires_at.timestamp()),
            "iss": self.jwt.issuer,
            "client_id": record.client_id or self.first_party_client_id,
        }

    async def _refresh_session(self, session: AsyncSession, token: str) -> Session | None:
        return await SessionRepository.from_session(session).get_by_refresh_hash(
            hash_token(token), lock=False
        )
