"""The ``sessions`` table: one login, its refresh-token family and its revocation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base

if TYPE_CHECKING:
    from user_service.models.user import User


class Session(Base):
    """A login session. Only a hash of the current refresh token is stored."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=uuid.uuid4, index=True)
    refresh_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    #: The OAuth client that opened the session (``None``: before clients were recorded).
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    #: When the user last proved who they are in this session (sign-in or step-up);
    #: ``None``: opened before this was recorded (``created_at`` stands in).
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: How (RFC 8176 ``amr`` values, space-separated): ``pwd``, ``pwd otp``.
    amr: Mapped[str | None] = mapped_column(String(64), default=None)

    user: Mapped[User] = relationship(back_populates="sessions", lazy="raise")

    __table_args__ = (Index("ix_sessions_revoked_at", "revoked_at"),)
