"""Migration checks every service runs: the schema its migrations build is its models'."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine


async def schema_drift(engine: AsyncEngine, metadata: MetaData) -> list[Any]:
    """Alembic's differences between the database and ``metadata`` (empty: none).

    Tables of other services sharing the run's database are not compared.
    """

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        changes: list[Any] = compare_metadata(context, metadata)
        return changes

    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    return [c for c in changes if not _foreign(c, metadata)]


def _foreign(change: Any, metadata: MetaData) -> bool:
    """Whether ``change`` drops something of a table ``metadata`` does not declare."""
    if not isinstance(change, tuple) or not str(change[0]).startswith("remove_"):
        return False
    subject = change[1]
    table = subject if change[0] == "remove_table" else getattr(subject, "table", None)
    return table is not None and table.name not in metadata.tables
