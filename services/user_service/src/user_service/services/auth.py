"""Login (its first step, with TOTP on), refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from user_service.addresses import normalize_email
from user_service.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidGrant,
    MfaRequired,
    RefreshTokenReuse,
)
from user_service.models import MfaChallenge, User
from user_service.repositories import (
    MfaChallengeRepository,
    SessionRepository,
    TotpCredentialRepository,
    UserRepository,
)
from user_service.services.audit import AuditAction, Outcome
from user_service.tokens import hash_token, new_opaque_token, successor_refresh_token

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from servicekit.ratelimit import Lockout, RateLimiter
    from user_service.config import JwtSettings, MfaSettings
    from user_service.models import Session
    from user_service.security import PasswordHasher
    from user_service.services.audit import AuditTrail
    from user_service.services.revocation import SessionRevoker
    from user_service.services.signin import ClientInfo, SessionOpener, TokenPair

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthService:
    """Token issuance rules; never commits."""

    hasher: PasswordHasher
    sessions: SessionOpener
    lockout: Lockout
    limiter: RateLimiter
    revoker: SessionRevoker
    jwt: JwtSettings
    #: Derives a rotated refresh token's successor (see ``successor_refresh_token``).
    refresh_secret: str
    #: The client of sessions opened without one (the JSON endpoints, public clients).
    first_party_client_id: str
    audit: AuditTrail
    mfa: MfaSettings
    #: ``auth.require_verified_email``: unverified accounts cannot sign in.
    require_verified_email: bool = False

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
        so their answers reveal nothing either. With TOTP on, no session is opened: the
        answer is ``MfaRequired`` with a challenge for ``StepUpService.verify_mfa``.
        """
        account = normalize_email(email)
        await self.limiter.check([("login_account", account)])
        await self.lockout.ensure_unlocked(account)
        users = UserRepository.from_session(session)
        user = await users.get_by_email(account, share_lock=True)
        if user is None:
            await self.hasher.verify_dummy(password)
            raise await self._refused(session, account, None, "unknown_email")
        valid, new_hash = await self.hasher.verify(password, user.password_hash)
        if not valid or not user.is_active:
            reason = "wrong_password" if not valid else "inactive"
            raise await self._refused(session, account, user, reason)
        if new_hash is not None:  # parameters changed or an imported bcrypt hash
            upgraded = await users.upgrade_password_hash(user.id, user.password_hash, new_hash)
            log.info("user.password_rehash", user_id=str(user.id), done=upgraded)
        if self.require_verified_email and not user.is_verified:
            raise EmailNotVerified
        client_id = client_id or self.first_party_client_id
        if await TotpCredentialRepository.from_session(session).is_enabled(user.id):
            raise await self._challenge(session, user, client_id)
        await self.lockout.clear(account)
        return await self.sessions.open(session, user, client, client_id, amr=("pwd",))

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
            user = await self.sessions.usable(session, current, now)
            await repo.add_rotated(token_hash, current.id, now)
            current.refresh_token_hash = hash_token(successor)
            current.last_used_at = now
            await session.flush()
            return self.sessions.pair(user, current, successor)

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
            user = await self.sessions.usable(session, record, now)
            return self.sessions.pair(user, record, successor)

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

    async def _refused(
        self, session: AsyncSession, account: str, user: User | None, reason: str
    ) -> InvalidCredentials:
        """Count and audit a failed sign-in; returns the error to raise."""
        metrics.auth_failures().labels(reason).inc()
        if user is not None:
            log.info("user.login.failed", user_id=str(user.id))
        await self.lockout.record_failure(account)
        await self.audit.record(
            session,
            AuditAction.LOGIN,
            subject_id=user.id if user else None,
            outcome=Outcome.FAILURE,
            reason=reason,
            email=None if user else account,  # who was tried, when nobody has the address
        )
        return InvalidCredentials()

    async def _challenge(self, session: AsyncSession, user: User, client_id: str) -> MfaRequired:
        """Record a second-step challenge for ``user``; returns the error answering it."""
        token = new_opaque_token()
        now = utcnow()
        ttl = self.mfa.challenge_ttl_s
        await MfaChallengeRepository.from_session(session).add(
            MfaChallenge(
                token_hash=hash_token(token),
                user_id=user.id,
                client_id=client_id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        return MfaRequired(token, ttl)

    def _same_client(self, record: Session, client_id: str | None) -> None:
        if client_id is not None and (record.client_id or self.first_party_client_id) != client_id:
            raise InvalidGrant


def within_grace(elapsed: timedelta, grace: timedelta) -> bool:
    """Whether a rotated refresh token replayed ``elapsed`` after rotation is a concurrent copy.

    That is, still a concurrent client's copy. ``rotated_at`` may come from another instance
    whose clock runs ahead, so a negative ``elapsed`` counts as zero, and no grace means none
    at all.
    """
    return grace > timedelta(0) and max(elapsed, timedelta(0)) < grace
