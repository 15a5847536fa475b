"""Audit-trail payloads: one event, a page of them, and the listing's filters."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from servicekit.db.pagination import MAX_CURSOR_LENGTH, CursorPage
from user_service.schemas.admin import MAX_PAGE_SIZE


class AuditEventRead(BaseModel):
    """One recorded action."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: AwareDatetime
    actor_id: uuid.UUID | None = Field(description="The user who acted; null: anonymous.")
    actor_client_id: str | None = Field(description="The OAuth client used, or the service.")
    subject_id: uuid.UUID | None = Field(description="The account acted on.")
    action: str = Field(examples=["auth.login", "mfa.enabled", "admin.user_updated"])
    outcome: str = Field(examples=["success", "failure"])
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]


class AuditEventPage(CursorPage[AuditEventRead]):
    """One page of audit events, newest first."""


class SecurityEventQuery(BaseModel):
    """Filters and page of one account's events (newest first)."""

    action: list[str] = Field(
        default_factory=list, max_length=20, description="Only these actions (repeatable)."
    )
    since: AwareDatetime | None = Field(None, description="At or after this time.")
    until: AwareDatetime | None = Field(None, description="Before this time.")
    limit: int = Field(20, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` of the previous page, with the same filters.",
    )


class AuditEventQuery(SecurityEventQuery):
    """Filters and page of ``GET /admin/audit-events``."""

    user_id: uuid.UUID | None = Field(None, description="Events about this account.")
    actor_id: uuid.UUID | None = Field(None, description="Events this user caused.")
