"""TOTP enrolment, switching it off, recovery codes, and an administrator's reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger
from user_service import totp
from user_service.errors import MfaAlreadyEnabled, MfaEnrolmentNotStarted, MfaNotEnabled
from user_service.models import TotpCredential
from user_service.repositories import (
    MfaChallengeRepository,
    RecoveryCodeRepository,
    TotpCredentialRepository,
    UserRepository,
)
from user_service.schemas.events import MfaDisabled, MfaEnabled, user_subject
from user_service.services.audit import AuditAction

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder
    from user_service.config import MfaSettings
    from user_service.models import User
    from user_service.services.audit import AuditTrail
    from user_service.services.credentials import CredentialChecks

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the user's authenticator app needs: the secret, as text, URI and QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MfaService:
    """The user's second factor; never commits."""

    checks: CredentialChecks
    settings: MfaSettings
    events: EventRecorder
    audit: AuditTrail

    async def start_enrolment(self, session: AsyncSession, user: User) -> Enrolment:
        """A new pending secret (replacing a pending one); ``MfaAlreadyEnabled`` if on."""
        repo = TotpCredentialRepository.from_session(session)
        credential = await repo.get_locked(user.id)
        if credential is not None and credential.confirmed_at is not None:
            raise MfaAlreadyEnabled
        secret = totp.new_secret()
        sealed = self.checks.seal(secret)
        if credential is None:
            credential = TotpCredential(user_id=user.id, secret_sealed=sealed)
            session.add(credential)
        credential.secret_sealed = sealed
        credential.created_at = utcnow()
        credential.last_used_step = None
        await repo.flush()
        await self.audit.record(session, AuditAction.MFA_ENROLMENT_STARTED, subject_id=user.id)
        uri = totp.provisioning_uri(secret, account=user.email, issuer=self.settings.issuer_name)
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    async def confirm(self, session: AsyncSession, user: User, code: str) -> list[str]:
        """Switch TOTP on with a first code from the app; returns new recovery codes."""
        credential = await TotpCredentialRepository.from_session(session).get_locked(user.id)
        if credential is None:
            raise MfaEnrolmentNotStarted
        if credential.confirmed_at is not None:
            raise MfaAlreadyEnabled
        await self.checks.check_code(
            session,
            user,
            code,
            action=AuditAction.MFA_ENABLED,
            allow_recovery=False,
            credential=credential,
        )
        credential.confirmed_at = utcnow()
        codes = await self._new_recovery_codes(session, user)
        await self.events(
            session, MfaEnabled(user_id=user.id, email=user.email), subject=user_subject(user.id)
        )
        await self.audit.record(session, AuditAction.MFA_ENABLED, subject_id=user.id)
        log.info("user.mfa_enabled", user_id=str(user.id))
        return codes

    async def disable(self, session: AsyncSession, user: User, *, password: str, code: str) -> None:
        """Switch TOTP off after the password and a code (TOTP or recovery)."""
        await self.checks.confirm_password(session, user, password, action=AuditAction.MFA_DISABLED)
        factor = await self.checks.check_code(session, user, code, action=AuditAction.MFA_DISABLED)
        await self._remove(session, user, actor_id=None)
        await self.audit.record(
            session, AuditAction.MFA_DISABLED, subject_id=user.id, factor=factor.value
        )

    async def regenerate_recovery_codes(self, session: AsyncSession, user: User) -> list[str]:
        """Replace every recovery code; the old ones stop working."""
        if not await TotpCredentialRepository.from_session(session).is_enabled(user.id):
            raise MfaNotEnabled
        codes = await self._new_recovery_codes(session, user)
        await self.audit.record(session, AuditAction.RECOVERY_CODES_REGENERATED, subject_id=user.id)
        return codes

    async def reset(
        self, session: AsyncSession, *, actor_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        """An administrator switches a user's TOTP off (a lost device); ``MfaNotEnabled``."""
        user = await UserRepository.from_session(session).get(user_id)
        if user is None or not await TotpCredentialRepository.from_session(session).is_enabled(
            user_id
        ):
            raise MfaNotEnabled
        await self._remove(session, user, actor_id=actor_id)
        await self.audit.record(session, AuditAction.ADMIN_MFA_RESET, subject_id=user.id)
        log.info("admin.mfa_reset", actor_id=str(actor_id), target_user_id=str(user.id))

    async def _remove(
        self, session: AsyncSession, user: User, *, actor_id: uuid.UUID | None
    ) -> None:
        await TotpCredentialRepository.from_session(session).remove(user.id)
        await self.events(
            session,
            MfaDisabled(user_id=user.id, email=user.email, actor_id=actor_id),
            subject=user_subject(user.id),
        )

    async def _new_recovery_codes(self, session: AsyncSession, user: User) -> list[str]:
        codes = [totp.new_recovery_code() for _ in range(self.settings.recovery_codes)]
        hashes = [totp.recovery_code_hash(self.checks.secret_key, code) for code in codes]
        await RecoveryCodeRepository.from_session(session).replace(user.id, hashes, utcnow())
        return codes


async def purge_expired_challenges(session: AsyncSession) -> int:
    """Delete sign-in challenges past their expiry (the maintainer's hourly purge)."""
    return await MfaChallengeRepository.from_session(session).purge_expired(utcnow())
