"""The ``users`` table."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Enum, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicekit.db.orm import TimestampMixin
from user_service.models.base import Base

if TYPE_CHECKING:
    from user_service.models.session import Session


class Role(StrEnum):
    """What a user may do."""

    USER = "user"
    ADMIN = "admin"


class User(TimestampMixin, Base):
    """An account. ``email`` is stored normalised (lower-cased); ``version`` guards updates."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Role.USER,
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    sessions: Mapped[list[Session]] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True
    )

    __table_args__ = (Index("ix_users_created_at_id", "created_at", "id"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's API
