"""The async database layer: engine, sessions and transactions, ORM helpers, repositories.

``servicekit.db.migrations`` (Alembic) is imported on its own, by migration environments
and CLIs, so serving a request never loads Alembic.
"""

from servicekit.db.engine import READ_ONLY, SQLITE_BEGIN_KEY, create_engine
from servicekit.db.errors import database_error
from servicekit.db.orm import TimestampMixin, UTCDateTime, make_metadata, utcnow
from servicekit.db.pagination import (
    MAX_CURSOR_LENGTH,
    CursorPage,
    InvalidCursor,
    Keyset,
    Page,
    decode_cursor,
    encode_cursor,
    keyset_after,
    keyset_order,
    page_from_rows,
)
from servicekit.db.repository import ReadRepository, Repository
from servicekit.db.session import (
    AfterCommit,
    AsyncReadSession,
    AsyncSession,
    ConnectionSource,
    SessionHook,
    apply_session_hooks,
    commit,
    create_sessionmaker,
    get_db_session,
    get_read_connection_source,
    on_commit,
    read_connection_source,
    read_only_connection,
    read_only_session,
    request_transaction,
    rollback,
)

__all__ = [
    "MAX_CURSOR_LENGTH",
    "READ_ONLY",
    "SQLITE_BEGIN_KEY",
    "AfterCommit",
    "AsyncReadSession",
    "AsyncSession",
    "ConnectionSource",
    "CursorPage",
    "InvalidCursor",
    "Keyset",
    "Page",
    "ReadRepository",
    "Repository",
    "SessionHook",
    "TimestampMixin",
    "UTCDateTime",
    "apply_session_hooks",
    "commit",
    "create_engine",
    "create_sessionmaker",
    "database_error",
    "decode_cursor",
    "encode_cursor",
    "get_db_session",
    "get_read_connection_source",
    "keyset_after",
    "keyset_order",
    "make_metadata",
    "on_commit",
    "page_from_rows",
    "read_connection_source",
    "read_only_connection",
    "read_only_session",
    "request_transaction",
    "rollback",
    "utcnow",
]
