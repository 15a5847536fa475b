"""The inbox of consumed event ids (``servicekit.events``) on the service's metadata."""

from __future__ import annotations

from notification_service.models.base import Base
from servicekit.events import InboxTables

inbox = InboxTables(Base.metadata)
