"""Database failures as domain errors: what is the dependency's fault, what the client's."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from servicekit.errors import (
    AppError,
    DatabaseTimeout,
    DatabaseUnavailable,
    TransactionConflict,
    UnstorableText,
)

#: SQLSTATEs of text PostgreSQL cannot take: character not in repertoire (NUL in UTF-8),
#: untranslatable character. Input the client sent, answered 422 whichever field held it.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
#: SQLSTATEs meaning "the server is going away or cannot take a connection": admin shutdown,
#: crash shutdown, cannot connect now, too many connections. Class 08 is "connection exception".
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"  # statement_timeout fired
#: serialization_failure, deadlock_detected: the transaction was rolled back, retryable.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})


def database_error(exc: BaseException) -> AppError | None:
    """The problem a database failure is answered with, or ``None`` for a real bug.

    Unavailability (refused or dropped connections, a pool timeout, a server shutting down)
    and a statement timeout are the dependency's fault, answered 503 with ``Retry-After``,
    as is a transaction PostgreSQL rolled back to break a deadlock (retry at once);
    text the database cannot store is the client's, answered 422; anything else (an
    unexpected constraint violation, bad SQL) stays a 500.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection free within the timeout
        return DatabaseUnavailable("No database connection became available in time.")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate == _QUERY_CANCELED:
        return DatabaseTimeout()
    if sqlstate in _UNSTORABLE_TEXT_SQLSTATES:
        return UnstorableText()
    if sqlstate in _CONFLICT_SQLSTATES:
        return TransactionConflict()
    if (
        exc.connection_invalidated
        or isinstance(exc.orig, OSError | TimeoutError)
        or (
            isinstance(sqlstate, str)
            and (sqlstate[:2] == "08" or sqlstate in _UNAVAILABLE_SQLSTATES)
        )
    ):
        return DatabaseUnavailable()
    return None
