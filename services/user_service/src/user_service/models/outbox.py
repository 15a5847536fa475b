"""The transactional outbox's tables (``servicekit.events``) on the service's metadata."""

from __future__ import annotations

from servicekit.events import OutboxTables
from user_service.models.base import Base

outbox = OutboxTables(Base.metadata)
