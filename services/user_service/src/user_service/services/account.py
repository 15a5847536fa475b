"""The signed-in user's own account: profile edits, password change, deletion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.observability.logging import get_logger
from user_service.repositories import UserRepository
from user_service.schemas.events import (
    UserDeleted,
    UserPasswordChanged,
    UserProfileUpdated,
    user_subject,
)
from user_service.services.audit import AuditAction
from user_service.services.email_links import cancel_email_change
from user_service.services.preconditions import check_version

if TYPE_CHECKING:
    import uuid
    from collections.abc import Collection

    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder
    from user_service.models import User
    from user_service.security import PasswordHasher
    from user_service.services.audit import AuditTrail
    from user_service.services.credentials import CredentialChecks
    from user_service.services.revocation import SessionRevoker

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AccountService:
    """Rules for a user acting on their own account; never commits."""

    checks: CredentialChecks
    hasher: PasswordHasher
    revoker: SessionRevoker
    events: EventRecorder
    audit: AuditTrail

    async def update_profile(
        self,
        session: AsyncSession,
        *,
        user: User,
        full_name: str | None,
        if_match: Collection[int] | None,
    ) -> User:
        """Change profile fields; the version column catches concurrent writers (412)."""
        check_version(user, if_match)
        if full_name is not None and full_name != user.full_name:
            user.full_name = full_name
            await UserRepository.from_session(session).flush()
            await self.events(
                session,
                UserProfileUpdated(user_id=user.id, full_name=full_name),
                subject=user_subject(user.id),
            )
        return user

    async def change_password(
        self,
        session: AsyncSession,
        *,
        user: User,
        current_password: str,
        new_password: str,
        current_session_id: uuid.UUID,
    ) -> None:
        """Set a new password and sign out every other session."""
        action = AuditAction.PASSWORD_CHANGED
        await self.checks.confirm_password(session, user, current_password, action=action)
        self.hasher.check_policy(new_password, email=user.email)
        user.password_hash = await self.hasher.hash(new_password)
        await UserRepository.from_session(session).flush()
        await cancel_email_change(session, user.id)
        await self.revoker.revoke(
            session, user_id=user.id, reason="password_changed", except_id=current_session_id
        )
        await self.events(
            session,
            UserPasswordChanged(user_id=user.id, email=user.email, method="changed"),
            subject=user_subject(user.id),
        )
        await self.audit.record(session, action, subject_id=user.id)
        log.info("user.password_changed", user_id=str(user.id))

    async def delete(self, session: AsyncSession, *, user: User, password: str) -> None:
        """Delete the account after re-checking the password; its tokens stop working."""
        action = AuditAction.ACCOUNT_DELETED
        await self.checks.confirm_password(session, user, password, action=action)
        # Revoke first: the ids must reach the denylist before the rows cascade away.
        await self.revoker.revoke(session, user_id=user.id, reason="account_deleted")
        await UserRepository.from_session(session).delete(user)
        await self.events(
            session,
            UserDeleted(user_id=user.id, email=user.email, actor_id=None),
            subject=user_subject(user.id),
        )
        await self.audit.record(session, action, subject_id=user.id, email=user.email)
        log.info("user.deleted", user_id=str(user.id))
