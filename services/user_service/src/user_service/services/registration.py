"""Registration: in the enumeration-safe mode only an address's owner learns it is taken."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from user_service.addresses import normalize_email
from user_service.errors import EmailAlreadyRegistered
from user_service.models import Role, User
from user_service.repositories import UserRepository

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.services.account_recovery import AccountRecoveryService
    from user_service.services.user import UserService


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationService:
    """Self-service sign-up; never commits."""

    users: UserService
    recovery: AccountRecoveryService
    #: Answer a known address like a new one (``UserServiceSettings.hides_accounts``).
    enumeration_safe: bool

    async def register(
        self, session: AsyncSession, *, email: str, password: str, full_name: str = ""
    ) -> User:
        """Create the account; raises ``PasswordPolicyViolation``, or ``EmailAlreadyRegistered``.

        In the enumeration-safe mode a taken address is not an error: its owner is mailed,
        and the caller gets an account that was never stored, shaped exactly like a new
        one, after the same work (the password was hashed, the insert tried).
        """
        try:
            return await self.users.create(
                session, email=email, password=password, full_name=full_name
            )
        except EmailAlreadyRegistered:
            if not self.enumeration_safe:
                raise
        owner = await UserRepository.from_session(session).get_by_email(normalize_email(email))
        if owner is not None:  # deleted meanwhile: there is nobody to tell
            await self.recovery.mail_registration_attempt(session, owner)
        return _unsaved_account(normalize_email(email), full_name)


def _unsaved_account(email: str, full_name: str) -> User:
    """What a new registration of ``email`` returns; never added to a session."""
    now = utcnow()
    return User(
        id=uuid.uuid4(),
        email=email,
        password_hash="",  # nosec B106 - never stored, never verified against
        full_name=full_name,
        role=Role.USER,
        is_active=True,
        is_verified=False,
        version=1,
        created_at=now,
        updated_at=now,
    )
