"""Deliveries for administrators: find the failed ones and send them again."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from notification_service.deps import AdminPrincipal, CourierLoop, DbSession
from notification_service.errors import DeliveryNotFound, DeliveryNotRetryable
from notification_service.schemas.api import DeliveryPage, DeliveryParams, DeliveryRead
from notification_service.services.deliveries import list_deliveries, retry_delivery
from servicekit.auth import InsufficientScope, InvalidToken, NotAuthenticated
from servicekit.db.pagination import InvalidCursor
from servicekit.http import problem_responses

router = APIRouter(prefix="/deliveries", tags=["admin"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken, InsufficientScope)


@router.get("", responses=problem_responses(*_AUTH_ERRORS, InvalidCursor, 422))
async def list_all(
    _admin: AdminPrincipal, session: DbSession, query: DeliveryParams
) -> DeliveryPage:
    """Every delivery, newest first, optionally of one status (`?status=failed`)."""
    page = await list_deliveries(
        session, user_id=None, status=query.status, cursor=query.cursor, limit=query.limit
    )
    return DeliveryPage.of(page)


@router.post(
    "/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(*_AUTH_ERRORS, DeliveryNotFound, DeliveryNotRetryable, 422),
)
async def retry(
    delivery_id: uuid.UUID, _admin: AdminPrincipal, session: DbSession, courier: CourierLoop
) -> DeliveryRead:
    """Send a failed delivery again, with a fresh count of attempts."""
    delivery = await retry_delivery(session, delivery_id, wake=courier.wake)
    return DeliveryRead.model_validate(delivery)
