"""RFC 7009 token revocation and RFC 7662 token introspection."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicekit.auth import Authenticator, InvalidToken
from servicekit.db.orm import utcnow
from user_service.errors import InvalidClient
from user_service.repositories import SessionRepository
from user_service.tokens import hash_token

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.config import IntrospectionSettings, JwtSettings
    from user_service.models import Session
    from user_service.services.revocation import SessionRevoker

REFRESH_HINT = "refresh_token"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenAdminService:
    """Revocation for clients, introspection for other services; never commits."""

    revoker: SessionRevoker
    authenticator: Authenticator
    jwt: JwtSettings
    clients: IntrospectionSettings

    async def revoke(
        self,
        session: AsyncSession,
        *,
        token: str,
        hint: str | None,
    ) -> None:
        """Revoke the session behind a refresh or access token.

        Unknown tokens are ignored (RFC 7009 §2.2: the answer is the same, so it reveals
        nothing).
        """
        record = await self._refresh_session(session, token)
        if record is not None:
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
        client_id: str,
        token: str,
        hint: str | None,
    ) -> dict[str, Any]:
        """What the token is and whether it is active.

        For a service that :meth:`authenticate_client` admitted.
        """
        if hint != REFRESH_HINT:
            try:
                principal = await self.authenticator.authenticate(token)
            except InvalidToken:
                pass
            else:
                return {
                    "active": True,
                    "token_type": "access_token",
                    "sub": str(principal.user_id),
                    "sid": str(principal.session_id),
                    "scope": " ".join(sorted(principal.scopes)),
                    "exp": int(principal.expires_at.timestamp()),
                    "jti": principal.token_id,
                    "iss": self.jwt.issuer,
                    "aud": self.jwt.audience,
                    "client_id": client_id,
                }
        record = await self._refresh_session(session, token)
        if record is None or record.revoked_at is not None or record.expires_at <= utcnow():
            return {"active": False}
        return {
            "active": True,
            "token_type": "refresh_token",
            "sub": str(record.user_id),
            "sid": str(record.id),
            "exp": int(record.expires_at.timestamp()),
            "iss": self.jwt.issuer,
            "client_id": client_id,
        }

    async def _refresh_session(self, session: AsyncSession, token: str) -> Session | None:
        return await SessionRepository.from_session(session).get_by_refresh_hash(
            hash_token(token), lock=False
        )

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> str:
        """The client id when the credentials are right; raises :class:`InvalidClient`."""
        expected = self.clients.clients.get(client_id or "")
        if expected is None or client_secret is None:
            raise InvalidClient
        if not hmac.compare_digest(expected.get_secret_value().encode(), client_secret.encode()):
            raise InvalidClient
        return client_id or ""
