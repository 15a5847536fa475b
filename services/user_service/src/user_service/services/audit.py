"""The audit trail: every security-relevant action, recorded in the action's own transaction.

A row is added to the session of the request (or event) that acts, so it commits with the
action and disappears with a rolled-back one. Failures that must leave a row (a wrong
password, a wrong code) are errors with ``commit_changes``. Who acted, from where and in
which request comes from the request context the chassis keeps; rows are append-only and
purged past ``audit.retention_days`` by the maintainer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from servicekit.context import current_request, current_request_id
from servicekit.db.orm import utcnow
from servicekit.db.pagination import Keyset, Page, decode_cursor, page_from_rows
from servicekit.observability.logging import get_logger
from user_service.models import AuditEvent
from user_service.repositories import AuditEventRepository

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from servicekit.db import AsyncSession

log = get_logger(__name__)


class AuditAction(StrEnum):
    """What an audit row records."""

    REGISTERED = "account.registered"
    LOGIN = "auth.login"
    MFA_CHALLENGE = "auth.mfa_verify"
    REAUTHENTICATED = "auth.reauthenticate"
    PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - an action
    PASSWORD_RESET = "account.password_reset"  # noqa: S105 - an action
    EMAIL_VERIFIED = "account.email_verified"
    EMAIL_CHANGE_REQUESTED = "account.email_change_requested"
    EMAIL_CHANGED = "account.email_changed"
    ACCOUNT_DELETED = "account.deleted"
    MFA_ENROLMENT_STARTED = "mfa.enrolment_started"
    MFA_ENABLED = "mfa.enabled"
    MFA_DISABLED = "mfa.disabled"
    RECOVERY_CODE_USED = "mfa.recovery_code_used"
    RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
    SESSIONS_REVOKED = "session.revoked"
    CLIENT_TOKEN_ISSUED = "oauth.client_credentials_issued"  # noqa: S105 - an action
    CLIENT_REGISTERED = "oauth.client_registered"
    CLIENT_SECRET_ROTATED = "oauth.client_secret_rotated"  # noqa: S105 - an action
    CLIENT_DISABLED = "oauth.client_disabled"
    ADMIN_USER_UPDATED = "admin.user_updated"
    ADMIN_USER_DELETED = "admin.user_deleted"
    ADMIN_MFA_RESET = "admin.mfa_reset"


class Outcome(StrEnum):
    """Whether the recorded attempt succeeded."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a user (through an OAuth client), or a service acting as itself."""

    user_id: uuid.UUID | None = None
    client_id: str | None = None


def request_actor() -> Actor:
    """The authenticated principal of the request in progress (anonymous without one)."""
    context = current_request()
    principal = context.principal if context is not None else None
    if principal is None:
        return Actor()
    if principal.is_service:
        return Actor(client_id=principal.client_id)
    return Actor(user_id=principal.user_id, client_id=principal.client_id)


def _position(event: AuditEvent) -> Keyset:
    return Keyset(at=event.occurred_at, id=event.id)


@dataclass(frozen=True, slots=True)
class AuditTrail:
    """Appends audit rows and reads them back; never commits."""

    #: Rows older than this many days are purged.
    retention_days: int

    async def record(
        self,
        session: AsyncSession,
        action: AuditAction,
        *,
        subject_id: uuid.UUID | None,
        outcome: Outcome = Outcome.SUCCESS,
        actor: Actor | None = None,
        **details: Any,
    ) -> None:
        """Add a row for ``action`` on ``subject_id`` to the session's transaction.

        ``actor`` defaults to the request's principal; the address, user agent and request
        id come from the request in progress (none outside one, e.g. in the CLI).
        """
        actor = actor if actor is not None else request_actor()
        context = current_request()
        session.add(
            AuditEvent(
                id=uuid.uuid4(),
                occurred_at=utcnow(),
                actor_id=actor.user_id,
                actor_client_id=actor.client_id,
                subject_id=subject_id,
                action=action.value,
                outcome=outcome.value,
                ip=context.client_ip if context is not None else None,
                user_agent=((context.user_agent or "")[:512] or None) if context else None,
                request_id=current_request_id(),
                details=details,
            )
        )

    async def list(
        self,
        session: AsyncSession,
        *,
        limit: int,
        cursor: str | None = None,
        subject_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        actions: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[AuditEvent]:
        """One page of events, newest first; raises ``InvalidCursor`` for a bad cursor."""
        after = decode_cursor(cursor, descending=True, id_type=uuid.UUID) if cursor else None
        rows = await AuditEventRepository.from_session(session).list_page(
            limit=limit + 1,
            after=after,
            subject_id=subject_id,
            actor_id=actor_id,
            actions=actions,
            since=since,
            until=until,
        )
        return page_from_rows(rows, limit=limit, key=_position, descending=True)

    async def purge(self, session: AsyncSession) -> int:
        """Delete the events past the retention; returns how many went."""
        cutoff = utcnow() - timedelta(days=self.retention_days)
        purged = await AuditEventRepository.from_session(session).purge_before(cutoff)
        if purged:
            log.info("audit.events_purged", events=purged)
        return purged
