"""Sessions and transactions: one transaction per request, committed before the response.

:func:`get_db_session` is meant to be used as ``Depends(get_db_session, scope="function")``
so the transaction is committed *before* the response is sent — FastAPI's default scope would
run the commit after the client already has a 2xx. Callbacks queued with :func:`on_commit`
run only after a successful commit and are dropped on rollback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Request  # noqa: TC002 - FastAPI reads dependency annotations at run time
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession as _SQLAlchemyAsyncSession

from servicekit.db.engine import READ_ONLY
from servicekit.errors import AppError
from servicekit.observability.logging import get_logger
from servicekit.state import app_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class AsyncReadSession(_SQLAlchemyAsyncSession):
    """A session handed out for reads (:func:`read_only_session`).

    The writing :class:`AsyncSession` is a subclass, so it goes wherever a read session is
    asked for; a read session where a writing one is required is a type error (mypy). At
    run time both are SQLAlchemy ``AsyncSession`` objects.
    """


class AsyncSession(AsyncReadSession):
    """A session that may write: services and repositories ``flush()``, never commit."""


AfterCommit = Callable[[], Awaitable[None]]
#: Called with every request's session before use (e.g. to watch flushes for a cache).
SessionHook = Callable[[AsyncSession], None]
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_AFTER_COMMIT_KEY = "servicekit.after_commit"

log = get_logger(__name__)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy refresh in async code)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autoflush=False)


def on_commit(session: _SQLAlchemyAsyncSession | Session, callback: AfterCommit) -> None:
    """Run ``callback`` after the session's transaction commits; dropped on rollback."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit, then run the queued after-commit callbacks (their failures are logged)."""
    await session.commit()
    callbacks: list[AfterCommit] = session.info.pop(_AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception as exc:  # the data is committed; a side effect must not undo it
            log.warning("db.after_commit_failed", error=repr(exc))


async def rollback(session: AsyncSession) -> None:
    """Roll back and drop the queued after-commit callbacks."""
    session.info.pop(_AFTER_COMMIT_KEY, None)
    await session.rollback()


@asynccontextmanager
async def request_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds (or raises an ``AppError`` with ``commit_changes``).

    Roll back on any other exception.
    """
    try:
        yield session
    except AppError as exc:
        if exc.commit_changes:
            await commit(session)
        else:
            await rollback(session)
        raise
    except BaseException:
        await rollback(session)
        raise
    await commit(session)


@asynccontextmanager
async def read_only_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncReadSession]:
    """A session for reads only: on SQLite it does not queue behind writers for the lock.

    On PostgreSQL it runs in autocommit, so a one-statement read is one round trip instead of
    three (BEGIN, the query, COMMIT). Reads of several statements see no common snapshot.
    """
    async with sessionmaker() as session:
        bind = session.bind
        sqlite = bind is not None and bind.dialect.name == "sqlite"
        await session.connection(execution_options=READ_ONLY if sqlite else _AUTOCOMMIT)
        yield session


@asynccontextmanager
async def read_only_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a one-statement Core read, without an ORM session.

    About a third of the CPU of :func:`read_only_session` for a read by primary key.
    Autocommit on PostgreSQL; on SQLite a deferred ``BEGIN``, so it does not queue behind
    writers.
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        yield await connection.execution_options(**(READ_ONLY if sqlite else _AUTOCOMMIT))


#: Opens a read-only connection when called; for reads that may not need the database.
ConnectionSource = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


async def get_read_connection_source(request: Request) -> ConnectionSource:
    """A :data:`ConnectionSource` of read-only connections: a cache hit opens none."""
    return read_connection_source(request)


def read_connection_source(request: Request) -> ConnectionSource:
    """:func:`get_read_connection_source` as a plain function, not a dependency.

    For routes that avoid dependencies on the hot path; it honours the same dependency
    override (tests).
    """
    override = request.app.dependency_overrides.get(get_read_connection_source)
    if override is not None:
        source: ConnectionSource = override()
        return source
    engine = app_state(request).engine
    return lambda: read_only_connection(engine)


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: commit on success, roll back on any exception.

    Declare it with ``Depends(get_db_session, scope="function")`` so the commit happens
    before the response is sent.
    """
    async with app_state(request).sessionmaker() as session, request_transaction(session):
        apply_session_hooks(request, session)
        yield session


def apply_session_hooks(request: Request, session: AsyncSession) -> None:
    """Run the service's session hooks (``AppState.session_hooks``)."""
    for hook in app_state(request).session_hooks:
        hook(session)
