"""The async engine: pool, timeouts, driver-error wrapping, SQLite setup and instrumentation.

Built in the application lifespan (:func:`create_engine`), never at import time.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from servicekit.context import record_query
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext, ExecutionContext
    from sqlalchemy.pool import ConnectionPoolEntry

    from servicekit.settings import ServiceSettings

#: Execution option / ``Connection.info`` key overriding SQLite's ``BEGIN IMMEDIATE`` with a
#: deferred ``BEGIN``: for read-only work (see :func:`servicekit.db.read_only_session`) and the
#: test plugin's long-lived per-test transaction, which must never hold the write lock idle.
SQLITE_BEGIN_KEY = "servicekit_sqlite_begin"
READ_ONLY = {SQLITE_BEGIN_KEY: "BEGIN"}
#: How long after the server's statement timeout the client stops waiting for an answer.
_CLIENT_TIMEOUT_MARGIN_S = 2.0
_STATEMENT_LOG_CHARS = 500
_CHECKED_OUT_KEY = "servicekit.checked_out"

log = get_logger(__name__)


def create_engine(settings: ServiceSettings, url: str | None = None) -> AsyncEngine:
    """Build the async engine with pool, timeouts and instrumentation from ``settings``."""
    url = url or settings.resolved_database_url()
    db = settings.database
    # `echo` is honoured through the logging config (servicekit.observability.logging), so
    # statements go through structlog with the request id instead of SQLAlchemy's handler.
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
