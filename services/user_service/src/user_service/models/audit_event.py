"""The ``audit_events`` table: an append-only record of security-relevant actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base


class AuditEvent(Base):
    """One security-relevant action, written in the transaction of the action itself.

    ``subject_id`` has no foreign key: the trail outlives the account it speaks of. Rows are
    never updated (a trigger refuses it); the maintainer deletes them past the retention.
    """

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The user who acted (``None``: anonymous, or a service acting as itself).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), default=None)
    #: The OAuth client the actor used, or the service that acted.
    actor_client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The account acted on (for sign-in failures of unknown addresses: ``None``).
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), default=None)
    action: Mapped[str] = mapped_column(String(64))
    #: ``success`` or ``failure``.
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_events_subject_id_occurred_at", "subject_id", "occurred_at", "id"),
        Index("ix_audit_events_action_occurred_at", "action", "occurred_at", "id"),
        Index("ix_audit_events_occurred_at_id", "occurred_at", "id"),
    )
