"""User rules: creation with a normalised email and a hashed password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from user_service.addresses import normalize_email
from user_service.models import Role, User
from user_service.repositories import UserRepository
from user_service.schemas.events import UserRegistered, user_subject
from user_service.services.audit import AuditAction

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder
    from user_service.security import PasswordHasher
    from user_service.services.audit import AuditTrail


@dataclass(frozen=True, slots=True)
class UserService:
    """Creates and reads users; never commits (the request or the CLI does)."""

    hasher: PasswordHasher
    events: EventRecorder
    audit: AuditTrail

    async def create(
        self,
        session: AsyncSession,
        *,
        email: str,
        password: str,
        full_name: str = "",
        role: Role = Role.USER,
        is_verified: bool = False,
    ) -> User:
        """Create a user; raises ``EmailAlreadyRegistered`` or ``PasswordPolicyViolation``."""
        email = normalize_email(email)
        self.hasher.check_policy(password, email=email)
        user = User(
            email=email,
            password_hash=await self.hasher.hash(password),
            full_name=full_name,
            role=role,
            is_verified=is_verified,
        )
        await UserRepository.from_session(session).create(user)
        await self.events(
            session,
            UserRegistered(
                user_id=user.id,
                email=user.email,
                full_name=user.full_name,
                role=user.role,
                is_verified=user.is_verified,
            ),
            subject=user_subject(user.id),
        )
        await self.audit.record(
            session, AuditAction.REGISTERED, subject_id=user.id, role=user.role.value
        )
        return user

    async def get_active(self, session: AsyncSession, user_id: uuid.UUID) -> User | None:
        """The user if it exists and is active."""
        user = await UserRepository.from_session(session).get(user_id)
        return user if user is not None and user.is_active else None
