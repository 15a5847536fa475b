"""Deliveries as the API shows them: a user's notifications, an administrator's retries."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from notification_service.errors import DeliveryNotFound, DeliveryNotRetryable
from notification_service.models import Delivery, DeliveryStatus
from notification_service.repositories import DeliveryRepository
from servicekit.db import on_commit
from servicekit.db.orm import utcnow
from servicekit.db.pagination import Page, decode_cursor

if TYPE_CHECKING:
    from collections.abc import Callable

    from servicekit.db import AsyncSession


async def list_deliveries(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None,
    status: DeliveryStatus | None,
    cursor: str | None,
    limit: int,
) -> Page[Delivery]:
    """One page, newest first; raises ``InvalidCursor`` for a cursor not issued here."""
    after = decode_cursor(cursor, descending=True, id_type=uuid.UUID) if cursor else None
    return await DeliveryRepository.from_session(session).page(
        user_id=user_id, status=status, after=after, limit=limit
    )


async def retry_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, *, wake: Callable[[], None]
) -> Delivery:
    """Put a failed delivery back in line with a fresh count of attempts."""
    delivery = await DeliveryRepository.from_session(session).get(delivery_id)
    if delivery is None:
        raise DeliveryNotFound
    if delivery.status is not DeliveryStatus.FAILED:
        raise DeliveryNotRetryable
    if delivery.recipient is None:
        raise DeliveryNotRetryable("The delivery's address was erased with its account.")
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.lease_until = None
    await session.flush()

    async def wake_courier() -> None:
        wake()

    on_commit(session, wake_courier)
    return delivery
