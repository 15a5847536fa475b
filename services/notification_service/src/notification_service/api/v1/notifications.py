"""The caller's own notifications and mail preferences."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from notification_service.deps import CurrentPrincipal, DbSession, Preferences
from notification_service.errors import SecurityMailRequired, UnknownMailKind
from notification_service.schemas.api import (
    NotificationPage,
    PageParams,
    PreferencesRead,
    PreferencesUpdate,
)
from notification_service.services import preferences
from notification_service.services.deliveries import list_deliveries
from servicekit.auth import BEARER_SECURITY, InvalidToken, NotAuthenticated, request_principal
from servicekit.db.pagination import InvalidCursor
from servicekit.db.session import read_connection_source
from servicekit.http import problem_responses
from servicekit.redis import Cache
from servicekit.state import app_state

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
    return NotificationPage.of(page)


@router.get(
    "/notification-preferences",
    response_model=PreferencesRead,
    responses=problem_responses(*_AUTH_ERRORS),
    openapi_extra=BEARER_SECURITY,
)
async def read_preferences(request: Request) -> Response:
    """Every kind of mail and whether the caller receives it."""
    # A hot read: no dependency for FastAPI to solve, the body encoded once per combination.
    principal = await request_principal(request)
    cache = app_state(request).get(Cache)
    body = await preferences.preferences_json(
        cache, principal.user_id, read_connection_source(request)
    )
    return Response(body, media_type="application/json")


@router.put(
    "/notification-preferences",
    responses=problem_responses(*_AUTH_ERRORS, SecurityMailRequired, UnknownMailKind, 422),
)
async def update_preferences(
    body: PreferencesUpdate, principal: CurrentPrincipal, session: DbSession, cache: Preferences
) -> PreferencesRead:
    """Switch the `muted` kinds of optional mail off and the others on."""
    return await preferences.update_preferences(session, cache, principal.user_id, body.muted)
