"""The ``oauth_clients`` table: services and apps that authenticate to the token endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.db.orm import UTCDateTime, utcnow
from user_service.models.base import Base


class OAuthClient(Base):
    """A registered OAuth 2 client; only the SHA-256 of its secret is stored.

    Tokens issued to the client carry ``revocation_id`` as their ``sid``: disabling the
    client lists that id on the session denylist, which every verifier already checks.
    """

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    audience: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    revocation_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=uuid.uuid4, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    secret_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
