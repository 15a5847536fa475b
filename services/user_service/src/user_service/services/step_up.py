"""The second step of a TOTP sign-in, and re-authentication for step-up (RFC 9470)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from user_service.errors import InvalidGrant, InvalidMfaToken, MfaCodeRequired
from user_service.repositories import (
    MfaChallengeRepository,
    SessionRepository,
    TotpCredentialRepository,
    UserRepository,
)
from user_service.services.audit import AuditAction
from user_service.tokens import hash_token

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from servicekit.ratelimit import Lockout
    from user_service.models import User
    from user_service.services.audit import AuditTrail
    from user_service.services.credentials import CredentialChecks
    from user_service.services.signin import ClientInfo, SessionOpener, TokenPair


@dataclass(frozen=True, slots=True, kw_only=True)
class StepUpService:
    """Codes and passwords proved again; never commits."""

    sessions: SessionOpener
    checks: CredentialChecks
    lockout: Lockout
    audit: AuditTrail

    async def verify_mfa(
        self, session: AsyncSession, *, mfa_token: str, code: str, client: ClientInfo
    ) -> TokenPair:
        """Open the session a challenge waits for, given a TOTP or recovery code.

        Raises ``InvalidMfaToken`` (unknown, used or expired) or ``InvalidMfaCode``; a wrong
        code leaves the challenge usable until it expires, and the lockout bounds guesses.
        """
        challenge = await MfaChallengeRepository.from_session(session).get_locked(
            hash_token(mfa_token)
        )
        now = utcnow()
        if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
            raise InvalidMfaToken
        user = await UserRepository.from_session(session).get(challenge.user_id)
        if user is None or not user.is_active:
            raise InvalidMfaToken
        factor = await self.checks.check_code(session, user, code, action=AuditAction.MFA_CHALLENGE)
        challenge.used_at = now
        await self.lockout.clear(user.email)
        return await self.sessions.open(
            session, user, client, challenge.client_id, amr=("pwd", "otp"), factor=factor
        )

    async def reauthenticate(
        self,
        session: AsyncSession,
        *,
        user: User,
        session_id: uuid.UUID,
        password: str,
        code: str | None,
    ) -> TokenPair:
        """Prove the user again in this session; returns a fresh access token.

        The password, and a code when TOTP is on; the session's ``auth_time`` becomes now,
        so its next access tokens pass the step-up check.
        """
        action = AuditAction.REAUTHENTICATED
        await self.checks.confirm_password(session, user, password, action=action)
        amr: tuple[str, ...] = ("pwd",)
        if await TotpCredentialRepository.from_session(session).is_enabled(user.id):
            if not code:
                raise MfaCodeRequired
            await self.checks.check_code(session, user, code, action=action)
            amr = ("pwd", "otp")
        record = await SessionRepository.from_session(session).get_locked(session_id)
        if record is None or record.user_id != user.id:
            raise InvalidGrant
        await self.sessions.usable(session, record, utcnow())
        record.auth_time, record.amr = utcnow(), " ".join(amr)
        await session.flush()
        await self.lockout.clear(user.email)
        await self.audit.record(session, action, subject_id=user.id, amr=list(amr))
        return self.sessions.pair(user, record, None)
