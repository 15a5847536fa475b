"""Request and response bodies of the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from notification_service.models import DeliveryStatus
from servicekit.db.pagination import CursorPage


class NotificationRead(BaseModel):
    """A mail sent (or to be sent) to the caller; its content and links are not shown."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    subject: str = Field(description="Empty until the mail has been rendered.")
    status: DeliveryStatus
    created_at: datetime
    sent_at: datetime | None


class DeliveryRead(NotificationRead):
    """A delivery as an administrator sees it: its attempts and their errors."""

    event_id: str
    user_id: uuid.UUID | None
    recipient: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    provider_response: str | None


NotificationPage = CursorPage[NotificationRead]
DeliveryPage = CursorPage[DeliveryRead]


class PageQuery(BaseModel):
    """Keyset pagination: newest first."""

    cursor: str | None = Field(None, max_length=512)
    limit: int = Field(20, ge=1, le=100)


class DeliveryQuery(PageQuery):
    """The deliveries an administrator lists."""

    status: DeliveryStatus | None = None


PageParams = Annotated[PageQuery, Query()]
DeliveryParams = Annotated[DeliveryQuery, Query()]


class MailKindRead(BaseModel):
    """One kind of mail and whether the caller receives it."""

    kind: str
    security: bool = Field(description="Security notices are always sent.")
    enabled: bool


class PreferencesRead(BaseModel):
    """The caller's mail preferences."""

    kinds: list[MailKindRead]


class PreferencesUpdate(BaseModel):
    """The kinds of optional mail to switch off; every other kind is switched on."""

    model_config = ConfigDict(extra="forbid")

    muted: list[Annotated[str, Field(max_length=50)]] = Field(max_length=20)
