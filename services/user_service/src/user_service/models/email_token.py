"""The ``email_tokens`` table: single-use links for email verification and password reset."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base


class TokenPurpose(StrEnum):
    """What an emailed token allows."""

    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password
    EMAIL_CHANGE = "email_change"


class EmailToken(Base):
    """An emailed token. Only its SHA-256 is stored; ``used_at`` makes it single-use.

    ``email`` is the account's address when the link was issued (where verification and reset
    links go): a token stops working if the address has changed since, so it can neither
    verify nor reset a different mailbox. An email-change link goes to ``new_email``.
    """

    __tablename__ = "email_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(
            TokenPurpose,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    email: Mapped[str] = mapped_column(String(320))
    #: For an email change: the address the link was sent to, which it confirms.
    new_email: Mapped[str | None] = mapped_column(String(320), default=None)
    #: For an email change: the session that asked, which stays signed in on confirmation.
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (Index("ix_email_tokens_user_id_purpose", "user_id", "purpose"),)
