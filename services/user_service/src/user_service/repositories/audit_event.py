"""Queries on ``audit_events``: append, list newest first, purge past the retention."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete

from servicekit.db.pagination import keyset_window
from servicekit.db.repository import Repository
from user_service.models import AuditEvent

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence
    from datetime import datetime

    from servicekit.db.pagination import Keyset


class AuditEventRepository(Repository[AuditEvent]):
    """The audit trail; rows are only ever inserted, listed and purged."""

    model = AuditEvent

    async def list_page(
        self,
        *,
        limit: int,
        after: Keyset | None = None,
        subject_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        actions: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        """Up to ``limit`` events after ``after``, newest first, filtered."""
        statement = self.select()
        if subject_id is not None:
            statement = statement.where(AuditEvent.subject_id == subject_id)
        if actor_id is not None:
            statement = statement.where(AuditEvent.actor_id == actor_id)
        if actions:
            statement = statement.where(AuditEvent.action.in_(actions))
        if since is not None:
            statement = statement.where(AuditEvent.occurred_at >= since)
        if until is not None:
            statement = statement.where(AuditEvent.occurred_at < until)
        return await self.list(
            keyset_window(
                statement,
                AuditEvent.occurred_at,
                AuditEvent.id,
                after=after,
                descending=True,
                limit=limit,
            )
        )

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete the events older than ``cutoff``; returns how many went."""
        result = await self.session.execute(
            delete(AuditEvent)
            .where(AuditEvent.occurred_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
