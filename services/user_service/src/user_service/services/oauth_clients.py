"""OAuth clients: registration, secret rotation, disabling, and client authentication."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger
from user_service.errors import ClientAlreadyRegistered, ClientNotFound, InvalidClient
from user_service.models import OAuthClient
from user_service.repositories import OAuthClientRepository
from user_service.services.audit import AuditAction
from user_service.tokens import hash_token

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Sequence

    from servicekit.db import AsyncSession
    from user_service.schemas.oauth_client import ClientCreate
    from user_service.services.audit import AuditTrail
    from user_service.services.oauth import PresentedClient

log = get_logger(__name__)
#: Compared against when the client id is unknown, so timing does not reveal which ids exist.
_NO_SUCH_SECRET = hash_token("no such client")


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthClientService:
    """The client registry's rules; never commits."""

    #: Lists revocation ids on the denylist once the transaction commits
    #: (:meth:`SessionRevoker.list_after_commit`).
    revoke_tokens: Callable[[AsyncSession, Sequence[uuid.UUID]], None]
    #: The `aud` of a client's tokens unless it names another.
    default_audience: str
    #: Reserved for first-party apps (a public client, with no secret).
    first_party_client_id: str
    audit: AuditTrail

    async def create(self, session: AsyncSession, *, spec: ClientCreate) -> tuple[OAuthClient, str]:
        """Register a client; returns it with its secret (stored only as a hash)."""
        repo = OAuthClientRepository.from_session(session)
        if spec.client_id == self.first_party_client_id or await repo.get(spec.client_id):
            raise ClientAlreadyRegistered
        secret = spec.client_secret.get_secret_value() if spec.client_secret else _new_secret()
        now = utcnow()
        client = OAuthClient(
            id=spec.client_id,
            secret_hash=hash_token(secret),
            grant_types=sorted(set(spec.grant_types)),
            scopes=sorted(set(spec.scopes)),
            audience=spec.audience or self.default_audience,
            enabled=True,
            created_at=now,
            secret_rotated_at=now,
        )
        await repo.add(client)
        await self._audit(session, AuditAction.CLIENT_REGISTERED, client)
        log.info("oauth.client_created", client_id=client.id)
        return client, secret

    async def list(self, session: AsyncSession) -> Sequence[OAuthClient]:
        """Every client, disabled ones included."""
        return await OAuthClientRepository.from_session(session).all()

    async def rotate_secret(self, session: AsyncSession, client_id: str) -> tuple[OAuthClient, str]:
        """Replace the secret; tokens already issued stay valid until they expire."""
        client = await self._get(session, client_id)
        secret = _new_secret()
        client.secret_hash = hash_token(secret)
        client.secret_rotated_at = utcnow()
        await session.flush()
        await self._audit(session, AuditAction.CLIENT_SECRET_ROTATED, client)
        log.info("oauth.client_secret_rotated", client_id=client.id)
        return client, secret

    async def disable(self, session: AsyncSession, client_id: str) -> OAuthClient:
        """Refuse the client from now on and revoke every token issued to it."""
        client = await self._get(session, client_id)
        if client.enabled:
            client.enabled = False
            client.disabled_at = utcnow()
            await session.flush()
            self.revoke_tokens(session, [client.revocation_id])
            await self._audit(session, AuditAction.CLIENT_DISABLED, client)
            log.info("oauth.client_disabled", client_id=client.id)
        return client

    async def caller(
        self, session: AsyncSession, presented: PresentedClient | None
    ) -> OAuthClient | None:
        """The authenticated client; ``None`` for the first-party public client (no secret)."""
        if presented is None or (
            presented.client_id == self.first_party_client_id and presented.secret is None
        ):
            return None
        return await self.authenticate(session, presented)

    async def authenticate(self, session: AsyncSession, presented: PresentedClient) -> OAuthClient:
        """The enabled client whose secret this is; raises :class:`InvalidClient` otherwise."""
        client = await OAuthClientRepository.from_session(session).get(presented.client_id)
        expected = client.secret_hash if client is not None else _NO_SUCH_SECRET
        matches = [hmac.compare_digest(hash_token(s), expected) for s in presented.secrets()]
        if client is None or not any(matches) or not client.enabled:
            raise InvalidClient
        return client

    async def _audit(self, session: AsyncSession, action: AuditAction, client: OAuthClient) -> None:
        await self.audit.record(
            session,
            action,
            subject_id=None,
            client_id=client.id,
            grant_types=list(client.grant_types),
            scopes=list(client.scopes),
        )

    async def _get(self, session: AsyncSession, client_id: str) -> OAuthClient:
        client = await OAuthClientRepository.from_session(session).get_locked(client_id)
        if client is None:
            raise ClientNotFound
        return client


def _new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)
