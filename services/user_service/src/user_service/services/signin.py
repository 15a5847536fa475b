"""Opening a session for a user who proved who they are, and the tokens it answers with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger
from user_service.errors import InvalidGrant
from user_service.models import Session, User
from user_service.repositories import SessionRepository, UserRepository
from user_service.schemas.events import SessionCreated, user_subject
from user_service.services.audit import Actor, AuditAction
from user_service.tokens import ROLE_SCOPES, TokenIssuer, hash_token, new_opaque_token

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder
    from user_service.config import JwtSettings
    from user_service.services.audit import AuditTrail
    from user_service.services.credentials import Factor

log = get_logger(__name__)


@dataclass(frozen=True)
class TokenPair:
    """What a successful login or refresh returns to the client."""

    access_token: str
    expires_in: int
    #: ``None`` for a client-credentials token, which has no session, and after a
    #: re-authentication (the session keeps its refresh token).
    refresh_token: str | None
    scope: str
    session_id: uuid.UUID | None


@dataclass(frozen=True)
class ClientInfo:
    """Where a login comes from, shown later in the session list."""

    user_agent: str | None
    ip: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOpener:
    """Opens sessions and signs their access tokens; never commits."""

    issuer: TokenIssuer
    jwt: JwtSettings
    events: EventRecorder
    audit: AuditTrail
    #: The client of sessions opened without one (the JSON endpoints, public clients).
    first_party_client_id: str

    async def open(
        self,
        session: AsyncSession,
        user: User,
        client: ClientInfo,
        client_id: str,
        *,
        amr: tuple[str, ...],
        factor: Factor | None = None,
    ) -> TokenPair:
        """A new session for ``user``, authenticated now by ``amr`` (RFC 8176 values)."""
        refresh_token = new_opaque_token()
        now = utcnow()
        record = Session(
            id=uuid.uuid4(),
            user_id=user.id,
            family_id=uuid.uuid4(),
            refresh_token_hash=hash_token(refresh_token),
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=self.jwt.refresh_token_ttl_days),
            user_agent=(client.user_agent or "")[:512] or None,
            ip=client.ip,
            client_id=client_id,
            auth_time=now,
            amr=" ".join(amr),
        )
        await SessionRepository.from_session(session).add(record)
        created = SessionCreated(
            user_id=user.id, session_id=record.id, ip=record.ip, user_agent=record.user_agent
        )
        await self.events(
            session,
            created,
            subject=f"{user_subject(user.id)}/session/{record.id}",
            partition_key=user_subject(user.id),
        )
        await self.audit.record(
            session,
            AuditAction.LOGIN,
            subject_id=user.id,
            actor=Actor(user_id=user.id, client_id=client_id),
            session_id=str(record.id),
            amr=list(amr),
            factor=factor.value if factor else None,
        )
        log.info("user.login.succeeded", user_id=str(user.id), session_id=str(record.id))
        return self.pair(user, record, refresh_token)

    async def usable(self, session: AsyncSession, record: Session, now: datetime) -> User:
        """The session's user if the session and the account are live; ``InvalidGrant``."""
        if record.revoked_at is not None or record.expires_at <= now:
            raise InvalidGrant
        user = await UserRepository.from_session(session).get(record.user_id)
        if user is None or not user.is_active:
            raise InvalidGrant
        return user

    def pair(self, user: User, record: Session, refresh_token: str | None) -> TokenPair:
        """A new access token for the session, with ``refresh_token`` beside it."""
        scopes = ROLE_SCOPES[user.role]
        access = self.issuer.access_token(
            user_id=user.id,
            session_id=record.id,
            scopes=scopes,
            client_id=record.client_id or self.first_party_client_id,
            auth_time=record.auth_time or record.created_at,
            amr=(record.amr or "pwd").split(),
        )
        return TokenPair(
            access_token=access.token,
            expires_in=access.expires_in,
            refresh_token=refresh_token,
            scope=" ".join(scopes),
            session_id=record.id,
        )
