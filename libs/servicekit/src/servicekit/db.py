"""Async SQLAlchemy: engine, sessions and the one-transaction-per-request dependency.

The engine and sessionmaker are built in the application lifespan (:func:`create_engine`,
:func:`create_sessionmaker`), never at import time. :func:`get_db_session` is meant to be
used as ``Depends(get_db_session, scope="function")`` so the transaction is committed
*before* the response is sent — FastAPI's default scope would run the commit after the
client already has a 2xx. Callbacks queued with :func:`on_commit` run only after a
successful commit and are dropped on rollback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from servicekit import metrics
from servicekit.context import record_query
from servicekit.errors import AppError
from servicekit.logging import get_logger
from servicekit.settings import ServiceSettings

AfterCommit = Callable[[], Awaitable[None]]
#: Called with every request's session before use (e.g. to watch flushes for a cache).
SessionHook = Callable[[AsyncSession], None]
#: ``request.state`` key of the service's session hooks (a list set at start-up).
SESSION_HOOKS = "session_hooks"
#: Execution option / ``Connection.info`` key overriding SQLite's ``BEGIN IMMEDIATE`` with a
#: deferred ``BEGIN``: for read-only work (see :func:`read_only_session`) and the test
#: plugin's long-lived per-test transaction, which must never hold the write lock idle.
SQLITE_BEGIN_KEY = "servicekit_sqlite_begin"
READ_ONLY = {SQLITE_BEGIN_KEY: "BEGIN"}
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_AFTER_COMMIT_KEY = "servicekit.after_commit"
#: How long after the server's statement timeout the client stops waiting for an answer.
_CLIENT_TIMEOUT_MARGIN_S = 2.0
_STATEMENT_LOG_CHARS = 500
_CHECKED_OUT_KEY = "servicekit.checked_out"

log = get_logger(__name__)


def create_engine(settings: ServiceSettings, url: str | None = None) -> AsyncEngine:
    """Build the async engine with pool, timeouts and instrumentation from ``settings``."""
    url = url or settings.resolved_database_url()
    db = settings.database
    # `echo` is honoured through the logging config (see servicekit.logging), so statements
    # go through structlog with the request id instead of SQLAlchemy's own handler.
    # Bound parameters never reach logs or error messages outside debug mode: they can hold
    # password hashes, tokens and personal data.
    kwargs: dict[str, Any] = {
        "pool_pre_ping": db.pool_pre_ping,
        "hide_parameters": not settings.debug,
    }
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            kwargs.update(pool_size=db.pool_size, max_overflow=db.max_overflow)
            kwargs.update(pool_timeout=db.pool_timeout_s)
        kwargs["connect_args"] = {"timeout": db.connect_timeout_s}
    else:
        kwargs.update(
            pool_size=db.pool_size,
            max_overflow=db.max_overflow,
            pool_timeout=db.pool_timeout_s,
            pool_recycle=db.pool_recycle_s,
        )
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg":
            server_settings = {"application_name": settings.service_name}
            if db.statement_timeout_ms:
                server_settings["statement_timeout"] = str(db.statement_timeout_ms)
            kwargs["connect_args"] = {
                "timeout": db.connect_timeout_s,
                "server_settings": server_settings,
                # The client's own limit: a server that stops answering (a partition) never
                # sends the statement timeout's error, so without it a request would hang.
                "command_timeout": (
                    db.statement_timeout_ms / 1000 + _CLIENT_TIMEOUT_MARGIN_S
                    if db.statement_timeout_ms
                    else None
                ),
            }
    engine = _create_async_engine(url, **kwargs)
    instrument_engine(engine, slow_query_ms=db.slow_query_ms)
    _wrap_connect_errors(engine)
    _wrap_command_timeouts(engine)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _wrap_command_timeouts(engine: AsyncEngine) -> None:
    """A statement the driver gave up on (``command_timeout``) is a lost connection.

    asyncpg raises a bare ``TimeoutError``; as ``OperationalError`` with the connection
    invalidated it reaches the database error mapping (503 ``database_unavailable``), and the
    pool drops that connection and every older one: after a partition they are all suspect.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _timeout(context: ExceptionContext) -> BaseException | None:
        original = context.original_exception
        if context.sqlalchemy_exception is not None or not isinstance(original, TimeoutError):
            return None
        context.is_disconnect = True
        return sa_exc.OperationalError(
            context.statement, context.parameters, original, connection_invalidated=True
        )


def _wrap_connect_errors(engine: AsyncEngine) -> None:
    """Raise a refused or timed-out connect as ``OperationalError`` like any driver error.

    asyncpg lets ``ConnectionRefusedError`` and ``TimeoutError`` escape bare; wrapped, they
    reach the one database error mapping (503 ``database_unavailable``) instead of a 500.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(
        dialect: Dialect, _rec: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> DBAPIConnection:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, TimeoutError) as exc:
            raise sa_exc.OperationalError(
                "connect", None, exc, connection_invalidated=True
            ) from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys, WAL, a busy timeout, and real SAVEPOINT support for SQLite."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy emit BEGIN itself; the driver's implicit transactions break
        # SAVEPOINT (used by nested transactions and by the per-test rollback).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE: every transaction takes the write lock when it starts (waiting up to
        # the busy timeout). A deferred transaction that read first and writes later fails
        # at once with SQLITE_BUSY when another writer committed in between; serialising is
        # the embedded backend's answer to PostgreSQL's row locks.
        begin = conn.get_execution_options().get(SQLITE_BEGIN_KEY) or conn.info.get(
            SQLITE_BEGIN_KEY, "BEGIN IMMEDIATE"
        )
        conn.exec_driver_sql(begin)


def instrument_engine(engine: AsyncEngine, *, slow_query_ms: float) -> None:
    """Count statements per request, log slow ones and track pool checkouts."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(
        conn: Connection, _c: Any, _s: str, _p: Any, _ctx: ExecutionContext | None, _m: bool
    ) -> None:
        conn.info.setdefault("servicekit.query_start", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(
        conn: Connection,
        _c: Any,
        statement: str,
        _p: Any,
        _ctx: ExecutionContext | None,
        _m: bool,
    ) -> None:
        started = conn.info["servicekit.query_start"].pop()
        elapsed_ms = (time.perf_counter() - started) * 1000
        if statement.startswith("BEGIN"):  # SQLite's explicit BEGIN (see _configure_sqlite)
            return
        record_query(elapsed_ms)
        if elapsed_ms >= slow_query_ms:
            metrics.db_slow_queries().inc()
            # Parameters are never logged: they may hold secrets or personal data.
            log.warning(
                "db.slow_query",
                duration_ms=round(elapsed_ms, 2),
                statement=statement[:_STATEMENT_LOG_CHARS],
            )

    checked_out = metrics.db_pool_checked_out()

    # A checkout that fails (pre-ping on a dead server, a refused reconnect) is checked in
    # without its checkout having counted: count only the checkins of counted checkouts.
    @event.listens_for(sync_engine.pool, "checkout")
    def _checkout(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        (record.record_info or record.info)[_CHECKED_OUT_KEY] = True  # survives reconnects
        checked_out.inc()

    @event.listens_for(sync_engine.pool, "checkin")
    def _checkin(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        if (record.record_info or record.info).pop(_CHECKED_OUT_KEY, False):
            checked_out.dec()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy refresh in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def on_commit(session: AsyncSession | Session, callback: AfterCommit) -> None:
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
    """Commit when the block succeeds (or raises an ``AppError`` with ``commit_changes``);
    roll back on any other exception."""
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
) -> AsyncIterator[AsyncSession]:
    """A session for reads only: on SQLite it does not queue behind writers for the lock; on
    PostgreSQL it runs in autocommit, so a one-statement read is one round trip instead of
    three (BEGIN, the query, COMMIT). Reads of several statements see no common snapshot."""
    async with sessionmaker() as session:
        bind = session.bind
        sqlite = bind is not None and bind.dialect.name == "sqlite"
        await session.connection(execution_options=READ_ONLY if sqlite else _AUTOCOMMIT)
        yield session


@asynccontextmanager
async def read_only_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a one-statement Core read, without an ORM session (about a third
    of the CPU of :func:`read_only_session` for a read by primary key). Autocommit on
    PostgreSQL; on SQLite a deferred ``BEGIN``, so it does not queue behind writers."""
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        yield await connection.execution_options(**(READ_ONLY if sqlite else _AUTOCOMMIT))


#: Opens a read-only connection when called; for reads that may not need the database.
ConnectionSource = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


async def get_read_connection_source(request: Request) -> ConnectionSource:
    """A :data:`ConnectionSource` of read-only connections: a cache hit opens none."""
    return read_connection_source(request)


def read_connection_source(request: Request) -> ConnectionSource:
    """:func:`get_read_connection_source` as a plain function, for routes that avoid
    dependencies on the hot path; it honours the same dependency override (tests)."""
    override = request.app.dependency_overrides.get(get_read_connection_source)
    if override is not None:
        source: ConnectionSource = override()
        return source
    engine: AsyncEngine = request.state.engine
    return lambda: read_only_connection(engine)


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: commit on success, roll back on any exception.

    Declare it with ``Depends(get_db_session, scope="function")`` so the commit happens
    before the response is sent.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session, request_transaction(session):
        apply_session_hooks(request, session)
        yield session


def apply_session_hooks(request: Request, session: AsyncSession) -> None:
    """Run the service's session hooks (registered in ``state["session_hooks"]``)."""
    hooks: list[SessionHook] = getattr(request.state, SESSION_HOOKS, [])
    for hook in hooks:
        hook(session)
