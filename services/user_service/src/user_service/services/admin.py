"""Administration of accounts: listing, role and status changes, deletion.

Access tokens carry the scopes of the role they were issued for, so a role change or a
deactivation revokes every session of the user: no token outlives the rights it names.
An administrator cannot demote, deactivate or delete their own account, so a slip never
leaves the system without an administrator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.pagination import Keyset, Page, decode_cursor, page_from_rows
from servicekit.observability.logging import get_logger
from user_service.addresses import normalize_email
from user_service.errors import CannotModifySelf, UserNotFound
from user_service.models import Role, User
from user_service.repositories import UserQueryRepository
from user_service.schemas.events import (
    UserDeactivated,
    UserDeleted,
    UserReactivated,
    UserRoleChanged,
    user_subject,
)
from user_service.services.audit import AuditAction
from user_service.services.preconditions import check_version

if TYPE_CHECKING:
    from collections.abc import Collection

    from servicekit.db import AsyncSession, ConnectionSource
    from servicekit.events import EventRecorder
    from user_service.schemas.user import UserSnapshot
    from user_service.services.audit import AuditTrail
    from user_service.services.revocation import SessionRevoker
    from user_service.services.user_cache import CachedUsers

log = get_logger(__name__)


def _position(user: User) -> Keyset:
    return Keyset(at=user.created_at, id=user.id)


@dataclass(frozen=True, slots=True)
class AdminService:
    """User management for administrators; never commits."""

    revoker: SessionRevoker
    cached_users: CachedUsers
    events: EventRecorder
    audit: AuditTrail

    async def list_users(
        self,
        session: AsyncSession,
        *,
        limit: int,
        descending: bool = True,
        cursor: str | None = None,
        email_prefix: str | None = None,
        is_active: bool | None = None,
        is_verified: bool | None = None,
        role: Role | None = None,
    ) -> Page[User]:
        """One page of users by creation time; raises ``InvalidCursor`` for a bad cursor."""
        after = None
        if cursor is not None:
            after = decode_cursor(cursor, descending=descending, id_type=uuid.UUID)
        rows = await UserQueryRepository.from_session(session).list_page(
            limit=limit + 1,
            descending=descending,
            after=after,
            email_prefix=normalize_email(email_prefix) if email_prefix else None,
            is_active=is_active,
            is_verified=is_verified,
            role=role,
        )
        return page_from_rows(rows, limit=limit, key=_position, descending=descending)

    async def get_user(self, connections: ConnectionSource, user_id: uuid.UUID) -> UserSnapshot:
        """The user with this id, through the user cache; raises ``UserNotFound``.

        ``connections`` opens a read-only connection, on a cache miss only.
        """
        snapshot = await self.cached_users.get(user_id, connections)
        if snapshot is None:
            raise UserNotFound
        return snapshot

    async def _load(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        """The row itself, for a change; raises ``UserNotFound``."""
        user = await UserQueryRepository.from_session(session).get(user_id)
        if user is None:
            raise UserNotFound
        return user

    async def update_user(
        self,
        session: AsyncSession,
        *,
        actor_id: uuid.UUID,
        user_id: uuid.UUID,
        if_match: Collection[int] | None = None,
        role: Role | None = None,
        is_active: bool | None = None,
        is_verified: bool | None = None,
    ) -> User:
        """Change role and flags (``None``: unchanged).

        Raises ``UserNotFound``, ``PreconditionFailed`` (the version is not in ``if_match``
        or a concurrent write won) and ``CannotModifySelf``.
        """
        user = await self._load(session, user_id)
        check_version(user, if_match)
        if user.id == actor_id and (
            (role is not None and role != Role.ADMIN) or is_active is False
        ):
            raise CannotModifySelf
        changes: dict[str, object] = {}
        previous_role = user.role
        if role is not None and role != user.role:
            changes["role"] = user.role = role
        if is_active is not None and is_active != user.is_active:
            changes["is_active"] = user.is_active = is_active
        if is_verified is not None and is_verified != user.is_verified:
            changes["is_verified"] = user.is_verified = is_verified
        # Flush first: a lost version race fails here, before any session is revoked.
        await UserQueryRepository.from_session(session).flush()
        if is_active is False:  # again on an inactive user: harmless, and closes any stragglers
            await self.revoker.revoke(session, user_id=user.id, reason="deactivated")
        elif "role" in changes:
            await self.revoker.revoke(session, user_id=user.id, reason="role_changed")
        await self._record_changes(session, user, changes, previous_role, actor_id)
        if changes:
            await self.audit.record(
                session,
                AuditAction.ADMIN_USER_UPDATED,
                subject_id=user.id,
                changes={key: str(value) for key, value in changes.items()},
            )
            log.info(
                "admin.user_updated",
                actor_id=str(actor_id),
                target_user_id=str(user.id),
                changes={key: str(value) for key, value in changes.items()},
            )
        return user

    async def delete_user(
        self,
        session: AsyncSession,
        *,
        actor_id: uuid.UUID,
        user_id: uuid.UUID,
        if_match: Collection[int] | None = None,
    ) -> None:
        """Delete the account and its sessions; their tokens stop working everywhere.

        Raises ``UserNotFound``, ``PreconditionFailed`` and ``CannotModifySelf``.
        """
        user = await self._load(session, user_id)
        check_version(user, if_match)
        if user.id == actor_id:
            raise CannotModifySelf
        # Revoke before deleting: the cascade removes the session rows, and the denylist
        # (published after commit) needs their ids.
        await self.revoker.revoke(session, user_id=user.id, reason="deleted")
        await UserQueryRepository.from_session(session).delete(user)
        await self.events(
            session,
            UserDeleted(user_id=user.id, email=user.email, actor_id=actor_id),
            subject=user_subject(user.id),
        )
        await self.audit.record(
            session, AuditAction.ADMIN_USER_DELETED, subject_id=user.id, email=user.email
        )
        log.info("admin.user_deleted", actor_id=str(actor_id), target_user_id=str(user.id))

    async def _record_changes(
        self,
        session: AsyncSession,
        user: User,
        changes: dict[str, object],
        previous_role: Role,
        actor_id: uuid.UUID,
    ) -> None:
        """Publish the role and status changes an administrator made."""
        subject = user_subject(user.id)
        if "role" in changes:
            changed = UserRoleChanged(
                user_id=user.id, role=user.role, previous_role=previous_role, actor_id=actor_id
            )
            await self.events(session, changed, subject=subject)
        if changes.get("is_active") is False:
            deactivated = UserDeactivated(user_id=user.id, email=user.email, actor_id=actor_id)
            await self.events(session, deactivated, subject=subject)
        elif changes.get("is_active") is True:
            await self.events(
                session, UserReactivated(user_id=user.id, actor_id=actor_id), subject=subject
            )
