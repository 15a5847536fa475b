"""The audit trail: every account's events for administrators, one's own for each user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query

from servicekit.auth import InsufficientScope, InvalidToken, NotAuthenticated
from servicekit.db.pagination import InvalidCursor
from servicekit.http import problem_responses
from user_service.deps import AdminPrincipal, Audit, CurrentPrincipal, DbSession
from user_service.schemas.audit import AuditEventPage, AuditEventQuery, SecurityEventQuery

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from user_service.services.audit import AuditTrail

admin_router = APIRouter(prefix="/admin/audit-events", tags=["admin"])
router = APIRouter(prefix="/users/me/security-events", tags=["users"])


@admin_router.get(
    "",
    responses=problem_responses(
        NotAuthenticated, InvalidToken, InsufficientScope, InvalidCursor, 422
    ),
)
async def list_audit_events(
    _admin: AdminPrincipal,
    session: DbSession,
    audit: Audit,
    query: Annotated[AuditEventQuery, Query()],
) -> AuditEventPage:
    """Audit events, newest first, filtered; follow `next_cursor` for older ones."""
    return await _page(audit, session, query, subject_id=query.user_id, actor_id=query.actor_id)


@router.get("", responses=problem_responses(NotAuthenticated, InvalidToken, InvalidCursor, 422))
async def list_my_security_events(
    principal: CurrentPrincipal,
    session: DbSession,
    audit: Audit,
    query: Annotated[SecurityEventQuery, Query()],
) -> AuditEventPage:
    """The signed-in user's own security events (sign-ins, changes), newest first."""
    return await _page(audit, session, query, subject_id=principal.user_id)


async def _page(
    audit: AuditTrail,
    session: AsyncSession,
    query: SecurityEventQuery,
    *,
    subject_id: uuid.UUID | None,
    actor_id: uuid.UUID | None = None,
) -> AuditEventPage:
    """One page of the trail for ``query``'s filters, about ``subject_id``."""
    page = await audit.list(
        session,
        limit=query.limit,
        cursor=query.cursor,
        subject_id=subject_id,
        actor_id=actor_id,
        actions=query.action,
        since=query.since,
        until=query.until,
    )
    return AuditEventPage.of(page)
