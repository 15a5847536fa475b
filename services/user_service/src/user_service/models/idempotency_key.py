"""The ``idempotency_keys`` table: responses stored for retried requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` for one operation and caller, with the response.

    ``scope`` is the operation and the caller (``POST /api/v1/users|anonymous``), so a key is
    only ever replayed to the same operation; ``request_hash`` is the SHA-256 of the body, so
    a key reused for a different request is refused. The row is written in the transaction
    of the request's own change: it exists exactly when that change was committed.
    """

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)
