"""Deliveries: created by event handlers, claimed by couriers, listed by the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, update

from notification_service.models import Delivery, DeliveryStatus
from servicekit.db import Repository
from servicekit.db.orm import utcnow
from servicekit.db.pagination import Keyset, Page, keyset_window, page_from_rows

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence
    from datetime import datetime


def _position(delivery: Delivery) -> Keyset:
    return Keyset(at=delivery.created_at, id=delivery.id)


class DeliveryRepository(Repository[Delivery]):
    """SQL of the ``deliveries`` table."""

    model = Delivery

    async def claim_due(self, *, limit: int, lease_until: datetime) -> Sequence[Delivery]:
        """Lease up to ``limit`` deliveries due now, oldest first.

        On PostgreSQL the rows are locked with ``SKIP LOCKED``, so couriers running side by
        side take different rows; on SQLite the write lock makes one courier claim at a time.
        The lease (and the attempt it starts) is written in the caller's transaction.
        """
        now = utcnow()
        statement = (
            self.select()
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        due = await self.list(statement)
        for delivery in due:
            delivery.lease_until = lease_until
            delivery.attempts += 1
        await self.flush()
        return due

    async def page(
        self, *, user_id: uuid.UUID | None, status: DeliveryStatus | None, after: Keyset | None,
        limit: int,
    ) -> Page[Delivery]:  # fmt: skip
        """Newest first: a user's deliveries, or (``user_id=None``) everyone's."""
        statement = self.select()
        if user_id is not None:
            statement = statement.where(Delivery.user_id == user_id)
        if status is not None:
            statement = statement.where(Delivery.status == status)
        window = keyset_window(
            statement,
            Delivery.created_at,
            Delivery.id,
            after=after,
            descending=True,
            limit=limit + 1,
        )
        rows = await self.list(window)
        return page_from_rows(rows, limit=limit, key=_position, descending=True)

    async def erase_user(self, user_id: uuid.UUID) -> None:
        """Remove the personal data of a user's deliveries, keeping their counts and states."""
        await self.session.execute(
            update(Delivery)
            .where(Delivery.user_id == user_id)
            .values(user_id=None, recipient=None, recipient_name=None, context={})
        )
