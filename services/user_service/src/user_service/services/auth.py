"""Login, refresh-token rotation with reuse detection, and logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from user_service.addresses import normalize_email
from user_service.errors import InvalidCredentials, InvalidGrant, RefreshTokenReuse
from user_service.models import Session, User
from user_service.repositories import SessionRepository, UserRepository
from user_service.schemas.events import SessionCreated, user_subject
from user_service.tokens import (
    ROLE_SCOPES,
    TokenIssuer,
    hash_token,
    new_opaque_token,
    successor_refresh_token,
)

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder
    from servicekit.ratelimit import Lockout, RateLimiter
    from user_service.config import JwtSettings
    from user_service.security import PasswordHasher
    from user_service.services.revocation import SessionRevoker

log = get_logger(__name__)


@dataclass(frozen=True)
class TokenPair:
    """What a successful login or refresh returns to the client."""

    access_token: str
    expires_in: int
    #: ``None`` for a client-credentials token, which has no session.
    refresh_token: str | None
    scope: str
    session_id: uuid.UUID | None


@dataclass(frozen=True)
class ClientInfo:
    """Where a login comes from, shown later in the session list."""

    user_agent: str | None
    ip: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthService:
    """Token issuance rules; never commits."""

    hasher: PasswordHasher
    issuer: TokenIssuer
    lockout: Lockout
    limiter: RateLimiter
    revoker: SessionRevoker
    jwt: JwtSettings
    #: Derives a rotated refresh token's successor (see ``successor_refresh_token``).
    refresh_secret: str
    events: EventRecorder
    #: The client of sessions opened without one (the JSON endpoints, public clients).
    first_party_client_id: str

    async def login(
        self,
        session: AsyncSession,
        *,
        email: str,
        password: str,
        client: ClientInfo,
        client_id: str | None = None,
    ) -> TokenPair:
        """Check the credentials and open a session; unknown emails cost the same time.

        Limits and the lockout are keyed by the address whether or not it is registered,
        so their answers reveal nothing either.
        """
        account = normalize_email(email)
        await self.limiter.check([("login_account", account)])
        await self.lockout.ensure_unlocked(account)
        users = UserRepository.from_session(session)
        user = await users.get_by_email(account, share_lock=True)
        if user is None:
            await self.hasher.verify_dummy(password)
            metrics.auth_failures().labels("unknown_email").inc()
            await self.lockout.record_failure(account)
            raise InvalidCredentials
        valid, new_hash = await self.hasher.verify(password, user.password_hash)
        if not valid or not user.is_active:
            metrics.auth_failures().labels("wrong_password" if not valid else "inactive").inc()
            log.info("user.login.failed", user_id=str(user.id))
            await self.lockout.record_failure(account)
            raise InvalidCredentials
        await self.lockout.clear(account)
        if new_hash is not None:  # parameters changed or an imported bcrypt hash
            upgraded = await users.upgrade_password_hash(user.id, user.password_hash, new_hash)
            log.info("user.password_rehash", user_id=str(user.id), done=upgraded)
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
            client_id=client_id or self.first_party_client_id,
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
        log.info("user.login.succeeded", user_id=str(user.id), session_id=str(record.id))
        return self._pair(user, record, refresh_token)

    async def refresh(
        self, session: AsyncSession, *, refresh_token: str, client_id: str | None = None
    ) -> TokenPair:
        """Rotate the refresh token (RFC 9700 §4.14).

        A token used again after rotation revokes its session — unless it comes back
        within the grace window while its successor is still current (two tabs refreshing
        at once), in which case the same successor is returned again. A refresh token only
        works for the client it was issued to (RFC 6749 §6).
        """
        repo = SessionRepository.from_session(session)
        token_hash = hash_token(refresh_token)
        successor = successor_refresh_token(self.refresh_secret, refresh_token)
        current = await repo.get_by_refresh_hash(token_hash, lock=True)
        # Every clock reading follows the lock: a request that waited behind a rotation
        # must not be judged, or stamp the rotation, with a time taken before it.
        now = utcnow()
        if current is not None:
            self._same_client(current, client_id)
            await self.limiter.check([("refresh_session", str(current.id))])
            user = await self._usable(session, current, now)
            await repo.add_rotated(token_hash, current.id, now)
            current.refresh_token_hash = hash_token(successor)
            current.last_used_at = now
            await session.flush()
            return self._pair(user, current, successor)

        rotated = await repo.get_rotated(token_hash)
        if rotated is None:
            metrics.auth_failures().labels("unknown_refresh_token").inc()
            raise InvalidGrant
        record = await repo.get_locked(rotated.session_id)
        if record is None or record.revoked_at is not None:
            raise InvalidGrant
        grace = timedelta(seconds=self.jwt.refresh_grace_seconds)
        now = utcnow()
        current_successor = record.refresh_token_hash == hash_token(successor)
        if current_successor and within_grace(now - rotated.rotated_at, grace):
            self._same_client(record, client_id)
            await self.limiter.check([("refresh_session", str(record.id))])
            user = await self._usable(session, record, now)
            return self._pair(user, record, successor)

        await self.revoker.revoke(
            session, user_id=record.user_id, session_ids=[record.id], reason="refresh_reuse"
        )
        metrics.auth_failures().labels("refresh_token_reuse").inc()
        log.warning("auth.refresh_token_reuse", session_id=str(record.id))
        raise RefreshTokenReuse

    async def logout(
        self, session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> None:
        """Revoke one session."""
        await self.revoker.revoke(
            session, user_id=user_id, session_ids=[session_id], reason="logout"
        )

    async def logout_all(self, session: AsyncSession, *, user_id: uuid.UUID) -> None:
        """Revoke every session of the user."""
        await self.revoker.revoke(session, user_id=user_id, reason="logout_all")

    async def _usable(self, session: AsyncSession, record: Session, now: datetime) -> User:
        if record.revoked_at is not None or record.expires_at <= now:
            raise InvalidGrant
        user = await UserRepository.from_session(session).get(record.user_id)
        if user is None or not user.is_active:
            raise InvalidGrant
        return user

    def _same_client(self, record: Session, client_id: str | None) -> None:
        if client_id is not None and (record.client_id or self.first_party_client_id) != client_id:
            raise InvalidGrant

    def _pair(self, user: User, record: Session, refresh_token: str) -> TokenPair:
        scopes = ROLE_SCOPES[user.role]
        access = self.issuer.access_token(
            user_id=user.id,
            session_id=record.id,
            scopes=scopes,
            client_id=record.client_id or self.first_party_client_id,
        )
        return TokenPair(
            access_token=access.token,
            expires_in=access.expires_in,
            refresh_token=refresh_token,
            scope=" ".join(scopes),
            session_id=record.id,
        )


def within_grace(elapsed: timedelta, grace: timedelta) -> bool:
    """Whether a rotated refresh token replayed ``elapsed`` after rotation is a concurrent copy.

    That is, still a concurrent client's copy. ``rotated_at`` may come from another instance
    whose clock runs ahead, so a negative ``elapsed`` counts as zero, and no grace means none
    at all.
    """
    return grace > timedelta(0) and max(elapsed, timedelta(0)) < grace
