"""Keyset (cursor) pagination on ``(timestamp, id)`` with opaque cursors.

A cursor is the urlsafe-base64 of a small JSON object holding the last row's sort value,
its id and the sort direction it was issued for. Clients treat it as opaque; a malformed
or tampered cursor, one reused with the other direction, one whose id is not of the
listing's id type or whose timestamp cannot be expressed in UTC (year 1 at +05:00), is
:class:`InvalidCursor` (400 problem+json) before it reaches SQL, never a 500.

Keyset pages stay stable while rows are inserted and cost the same at any depth, unlike
``OFFSET``: the next page is ``WHERE (ts, id) < (last_ts, last_id) ORDER BY ts DESC, id
DESC`` (or the mirror image ascending), which an index on ``(ts, id)`` answers directly.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    OrderByList,
    Select,
    UnaryExpression,
    asc,
    desc,
    tuple_,
)

from servicekit.errors import AppError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")
ItemT = TypeVar("ItemT")
SelectT = TypeVar("SelectT")

OrderClause = OrderByList | UnaryExpression[Any]

#: Longer cursors than this are refused before decoding; real ones are about 100 chars.
MAX_CURSOR_LENGTH = 512
_BIGINT_BOUND = 2**63


class InvalidCursor(AppError):
    """The cursor was not issued by this listing (malformed, tampered or another sort)."""

    status_code = 400
    code = "invalid_cursor"
    message = "The pagination cursor is invalid; start again from the first page."


@dataclass(frozen=True)
class Keyset:
    """A position in a listing: the sort value and the unique id of the last row seen."""

    at: datetime
    id: uuid.UUID | int


def encode_cursor(position: Keyset, *, descending: bool) -> str:
    """The opaque cursor for ``position`` in a listing sorted in that direction."""
    ident: str | int = str(position.id) if isinstance(position.id, uuid.UUID) else position.id
    payload = {"t": position.at.isoformat(), "i": ident, "d": "desc" if descending else "asc"}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, *, descending: bool, id_type: type[uuid.UUID] | type[int]) -> Keyset:
    """The position in ``cursor``; raises :class:`InvalidCursor` for anything we did not issue.

    Args:
        cursor: the client's opaque cursor.
        descending: the listing's sort direction; a cursor of the other one is refused.
        id_type: the type of the listing's id column; a cursor with another is refused.
    """
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
        return _keyset(payload, descending=descending, id_type=id_type)
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError) as exc:
        # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors too.
        raise InvalidCursor from exc


def _keyset(payload: Any, *, descending: bool, id_type: type[uuid.UUID] | type[int]) -> Keyset:
    if not isinstance(payload, dict) or set(payload) != {"t", "i", "d"}:
        raise ValueError("unexpected cursor structure")
    if payload["d"] != ("desc" if descending else "asc"):
        raise ValueError("cursor issued for the other sort direction")
    at = datetime.fromisoformat(payload["t"])
    if at.tzinfo is None:  # our timestamps are always aware; a naive one was forged
        raise ValueError("naive timestamp in cursor")
    # The driver binds UTC: a time that cannot be expressed in it (year 1 east of Greenwich)
    # would overflow there, inside the query.
    at = at.astimezone(UTC)
    ident = payload["i"]
    if id_type is int:
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise TypeError("cursor id must be an integer")
        if not -_BIGINT_BOUND <= ident < _BIGINT_BOUND:
            raise ValueError("cursor id out of the 64-bit range")
        return Keyset(at=at, id=ident)
    if not isinstance(ident, str):
        raise TypeError("cursor id must be a UUID string")
    return Keyset(at=at, id=uuid.UUID(ident))


def keyset_order(
    at_column: ColumnExpressionArgument[Any],
    id_column: ColumnExpressionArgument[Any],
    *,
    descending: bool,
) -> tuple[OrderClause, OrderClause]:
    """``ORDER BY`` clauses of a keyset listing: the id breaks ties between equal times."""
    direction = desc if descending else asc
    return direction(at_column), direction(id_column)


def keyset_after(
    at_column: ColumnExpressionArgument[Any],
    id_column: ColumnExpressionArgument[Any],
    position: Keyset,
    *,
    descending: bool,
) -> ColumnElement[bool]:
    """The ``WHERE`` clause selecting the rows after ``position`` in the listing's order."""
    row = tuple_(at_column, id_column)
    after = (position.at, position.id)
    return row < after if descending else row > after


def keyset_window(
    statement: Select[SelectT],
    at_column: ColumnExpressionArgument[Any],
    id_column: ColumnExpressionArgument[Any],
    *,
    after: Keyset | None,
    descending: bool,
    limit: int,
) -> Select[SelectT]:
    """``statement`` in keyset order, from the row after ``after``, at most ``limit`` rows."""
    if after is not None:
        statement = statement.where(
            keyset_after(at_column, id_column, after, descending=descending)
        )
    return statement.order_by(*keyset_order(at_column, id_column, descending=descending)).limit(
        limit
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next page (``None`` on the last page)."""

    items: Sequence[T]
    next_cursor: str | None


def page_from_rows(
    rows: Sequence[T], *, limit: int, key: Callable[[T], Keyset], descending: bool
) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only proves there is more."""
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    items = rows[:limit]
    return Page(items=items, next_cursor=encode_cursor(key(items[-1]), descending=descending))


class CursorPage(BaseModel, Generic[ItemT]):
    """The response body of a cursor-paginated listing."""

    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to fetch the next page; `null` on the last page."
    )

    @classmethod
    def of(cls, page: Page[Any]) -> Self:
        """The body of ``page``, each item read from its row's attributes."""
        return cls.model_validate(
            {"items": list(page.items), "next_cursor": page.next_cursor}, from_attributes=True
        )
