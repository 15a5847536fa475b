"""The caller's own notifications and mail preferences."""

from __future__ import annotations

from fastapi import APIRouter

from notification_service.deps import CurrentPrincipal, DbSession
from notification_service.errors import SecurityMailRequired, UnknownMailKind
from notification_service.schemas.api import (
    NotificationPage,
    NotificationRead,
    PageParams,
    PreferencesRead,
    PreferencesUpdate,
)
from notification_service.services import preferences
from notification_service.services.deliveries import list_deliveries
from servicekit.auth import InvalidToken, NotAuthenticated
from servicekit.db.pagination import InvalidCursor
from servicekit.http import problem_responses

router = APIRouter(tags=["notifications"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)


@router.get("/notifications", responses=problem_responses(*_AUTH_ERRORS, InvalidCursor, 422))
async def list_notifications(
    principal: CurrentPrincipal, session: DbSession, query: PageParams
) -> NotificationPage:
    """The mails sent to the caller, newest first; follow `next_cursor` for the next page."""
    page = await list_deliveries(
        session, user_id=principal.user_id, status=None, cursor=query.cursor, limit=query.limit
    )
    return NotificationPage(
        items=[NotificationRead.model_validate(d) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/notification-preferences", responses=problem_responses(*_AUTH_ERRORS))
async def read_preferences(principal: CurrentPrincipal, session: DbSession) -> PreferencesRead:
    """Every kind of mail and whether the caller receives it."""
    return await preferences.read_preferences(session, principal.user_id)


@router.put(
    "/notification-preferences",
    responses=problem_responses(*_AUTH_ERRORS, SecurityMailRequired, UnknownMailKind, 422),
)
async def update_preferences(
    body: PreferencesUpdate, principal: CurrentPrincipal, session: DbSession
) -> PreferencesRead:
    """Switch the `muted` kinds of optional mail off and the others on."""
    return await preferences.update_preferences(session, principal.user_id, body.muted)
