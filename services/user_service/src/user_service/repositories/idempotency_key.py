"""Queries on ``idempotency_keys``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from servicekit.db.repository import Repository
from user_service.models import IdempotencyKey

if TYPE_CHECKING:
    from datetime import datetime


class IdempotencyKeyRepository(Repository[IdempotencyKey]):
    """Stored responses by (scope, key)."""

    model = IdempotencyKey

    async def claim(self, values: dict[str, Any]) -> IdempotencyKey | None:
        """Insert a record with ``values``; ``None`` when its (scope, key) exists already.

        On PostgreSQL a concurrent transaction that inserted the same key holds the unique
        index entry: this insert waits until that transaction ends, then fails (committed)
        or succeeds (rolled back), so two requests with one key never both run. A Core
        insert, so an instance of an earlier, deleted record in the session cannot clash.
        """
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(IdempotencyKey).values(**values))
        except IntegrityError:
            return None
        return await self.find(values["scope"], values["key"])

    async def find(self, scope: str, key: str) -> IdempotencyKey | None:
        """The record of (scope, key) as stored now, or ``None``."""
        return await self.get_one_or_none(
            self.select()
            .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )

    async def discard_expired(
        self, now: datetime, *, scope: str | None = None, key: str | None = None
    ) -> int:
        """Delete expired records (only (scope, key) when given); returns how many."""
        statement = delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)
        if scope is not None and key is not None:
            statement = statement.where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        result = await self.session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)
