"""A delivery: one mail the courier sends, created from one event, and its history.

A delivery is also what a user sees of their notifications (kind, subject, times, status),
never its context: that may hold an emailed link's token, sealed. The courier leases a
delivery while sending it (``lease_until``), so a courier that died mid-send leaves it to
another once the lease has run out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Enum, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from notification_service.models.base import Base
from servicekit.db.orm import UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    #: Waiting for its first or next attempt (``next_attempt_at``).
    PENDING = "pending"
    #: Handed to the mail server.
    SENT = "sent"
    #: Every attempt failed, or the failure cannot be retried (``last_error`` says why).
    FAILED = "failed"
    #: Not sent: the recipient switched this kind of mail off.
    SUPPRESSED = "suppressed"


class Delivery(Base):
    """One message to one recipient."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_user_created", "user_id", "created_at", "id"),
        # One mail of each kind per event, however often the event is redelivered.
        UniqueConstraint("event_id", "kind", name="uq_deliveries_event_id_kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    #: The event it was created from (one event may make several kinds of mail).
    event_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(50))
    #: Erased (``None``) when the account is deleted.
    recipient: Mapped[str | None] = mapped_column(String(320))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300), default="")
    #: The template's variables (a link's token sealed, never in clear).
    context: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=20), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The `Message-ID` header, fixed at creation: a resent message carries the same one.
    message_id: Mapped[str] = mapped_column(String(250))
    #: What the mail server answered on acceptance.
    provider_response: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
