"""Multi-factor authentication: TOTP credentials, recovery codes and sign-in challenges."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base


class TotpCredential(Base):
    """A user's TOTP secret (RFC 6238), sealed at rest; on once ``confirmed_at`` is set."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: The base32 secret, sealed with ``mfa.secret_keys`` (authenticated encryption).
    secret_sealed: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: ``None`` while enrolment waits for its first code.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: The last time step whose code was accepted: a code works once.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger(), default=None)


class RecoveryCode(Base):
    """A single-use recovery code; only its keyed hash is stored."""

    __tablename__ = "recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class MfaChallenge(Base):
    """The second step of a sign-in: a short-lived, single-use ``mfa_token`` (hashed)."""

    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("users.id", ondelete="CASCADE"))
    #: The OAuth client the first step authenticated (its session is opened for it).
    client_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (Index("ix_mfa_challenges_expires_at", "expires_at"),)
