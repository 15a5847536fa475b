"""Alembic support: a programmatic config and the body of every service's async ``env.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from collections.abc import Callable

    from alembic.config import Config

# Alembic is imported by the functions that use it: a service's CLI imports this module for
# its SQLite quick start, and importing Alembic up front (~0.1-0.2 s on the 2-core bench
# machine, bytecode compiled) would delay every `serve` on PostgreSQL, which never migrates.


def alembic_config(script_location: Path, database_url: str | None = None) -> Config:
    """An Alembic ``Config`` without an ini file; ``database_url`` overrides the settings."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(script_location: Path, database_url: str, revision: str = "head") -> None:
    """Migrate ``database_url`` to ``revision`` (creating a SQLite file's folder if needed)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    command.upgrade(alembic_config(script_location, database_url), revision)


def run_migrations(
    metadata: MetaData, default_url: Callable[[], str], *, version_table: str = "alembic_version"
) -> None:
    """Run the migration context; call it from a service's ``env.py``.

    A service gives its own ``version_table`` where its tables may share a database with
    another service's (a test run; never production, where each owns its database).
    """
    from alembic import context

    url = context.config.attributes.get("database_url") or default_url()
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table,
        "compare_type": True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        "render_as_batch": is_sqlite,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())
