"""What the service keeps of a user, from the user service's events, to reach them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from notification_service.models.base import Base
from servicekit.db.orm import UTCDateTime, utcnow


class Recipient(Base):
    """A user's address and name as last announced, and the devices they signed in from."""

    __tablename__ = "recipients"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    #: Fingerprints of the devices the user signed in from (a new one gets a notice).
    known_devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Preferences(Base):
    """A user's choice of optional mail; security mail cannot be switched off."""

    __tablename__ = "preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: Kinds of optional mail switched off (``["welcome"]``).
    muted_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
