"""Checks of what a user knows and has, each counted toward the account's lockout.

The same lockout (keyed by the account's address) counts failed sign-ins, failed password
confirmations on sensitive operations and failed codes, so a stolen access token cannot
guess the password, and a stolen password cannot guess the codes, past its limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from servicekit.observability import metrics
from user_service import totp
from user_service.errors import InvalidMfaCode, MfaNotEnabled, WrongPassword
from user_service.repositories import RecoveryCodeRepository, TotpCredentialRepository
from user_service.schemas.events import RecoveryCodeUsed, user_subject
from user_service.services.audit import AuditAction, Outcome

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder, Sealer
    from servicekit.ratelimit import Lockout
    from user_service.models import TotpCredential, User
    from user_service.security import PasswordHasher
    from user_service.services.audit import AuditTrail


#: Domain separation of the TOTP secrets' sealing key (``Sealer(purpose=…)``).
TOTP_SEAL_PURPOSE = b"user_service.mfa.totp-secret"


class Factor(StrEnum):
    """Which second factor a code was."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialChecks:
    """Password confirmation and code checks; failures are audited and locked out."""

    hasher: PasswordHasher
    lockout: Lockout
    audit: AuditTrail
    #: Seals TOTP secrets at rest (``mfa.secret_keys``).
    sealer: Sealer
    #: Keys the recovery codes' hashes (the service's ``secret_key``).
    secret_key: str
    events: EventRecorder

    async def confirm_password(
        self, session: AsyncSession, user: User, password: str, *, action: AuditAction
    ) -> None:
        """Check ``password`` for a sensitive operation; raises ``WrongPassword``."""
        await self.lockout.ensure_unlocked(user.email)
        valid, _ = await self.hasher.verify(password, user.password_hash)
        if not valid:
            await self._failed(session, user, action, "wrong_password")
            raise WrongPassword

    async def check_code(
        self,
        session: AsyncSession,
        user: User,
        code: str,
        *,
        action: AuditAction,
        allow_recovery: bool = True,
        credential: TotpCredential | None = None,
    ) -> Factor:
        """Accept a TOTP code (once per time step) or an unused recovery code.

        ``credential`` is a pending one being confirmed; by default the user's confirmed
        credential is used (``MfaNotEnabled`` without one). Raises ``InvalidMfaCode``.
        """
        await self.lockout.ensure_unlocked(user.email)
        if credential is None:
            credential = await TotpCredentialRepository.from_session(session).get_locked(user.id)
            if credential is None or credential.confirmed_at is None:
                raise MfaNotEnabled
        if totp.is_totp_code(code):
            if self._accept_totp(credential, code):
                return Factor.TOTP
        elif allow_recovery and await self._use_recovery_code(session, user, code):
            return Factor.RECOVERY_CODE
        await self._failed(session, user, action, "wrong_code")
        raise InvalidMfaCode

    def seal(self, secret: str) -> str:
        """The TOTP secret as stored."""
        return self.sealer.seal(secret)

    async def _use_recovery_code(self, session: AsyncSession, user: User, code: str) -> bool:
        """Spend the code if it is one of the user's unused ones; the user is told."""
        codes = RecoveryCodeRepository.from_session(session)
        code_hash = totp.recovery_code_hash(self.secret_key, code)
        if not await codes.use(user.id, code_hash, utcnow()):
            return False
        remaining = await codes.remaining(user.id)
        await self.events(
            session,
            RecoveryCodeUsed(user_id=user.id, email=user.email, remaining=remaining),
            subject=user_subject(user.id),
        )
        await self.audit.record(
            session, AuditAction.RECOVERY_CODE_USED, subject_id=user.id, remaining=remaining
        )
        return True

    def _accept_totp(self, credential: TotpCredential, code: str) -> bool:
        """Match the code within the drift window, refusing a step already used.

        The caller holds the credential's row lock, so two requests with one code serialise
        and the second sees the first's step.
        """
        secret = self.sealer.open(credential.secret_sealed)
        step = totp.matching_step(secret, code)
        if step is None or (
            credential.last_used_step is not None and step <= credential.last_used_step
        ):
            return False
        credential.last_used_step = step
        credential.secret_sealed = self.sealer.reseal(credential.secret_sealed)  # key rotation
        return True

    async def _failed(
        self, session: AsyncSession, user: User, action: AuditAction, reason: str
    ) -> None:
        metrics.auth_failures().labels(reason).inc()
        await self.lockout.record_failure(user.email)
        await self.audit.record(
            session, action, subject_id=user.id, outcome=Outcome.FAILURE, reason=reason
        )
