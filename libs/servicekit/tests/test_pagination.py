from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Integer, MetaData, Table

from servicekit.db.pagination import (
    MAX_CURSOR_LENGTH,
    InvalidCursor,
    Keyset,
    decode_cursor,
    encode_cursor,
    keyset_after,
    keyset_order,
    page_from_rows,
)

pytestmark = pytest.mark.unit

AT = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


class TestCursorRoundTrip:
    def test_uuid_position_survives_and_is_urlsafe(self) -> None:
        position = Keyset(at=AT, id=uuid.uuid4())
        cursor = encode_cursor(position, descending=True)
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert decode_cursor(cursor, descending=True, id_type=uuid.UUID) == position

    def test_integer_ids_stay_integers(self) -> None:
        position = Keyset(at=AT, id=42)
        cursor = encode_cursor(position, descending=False)
        assert decode_cursor(cursor, descending=False, id_type=int) == position

    @given(
        at=st.datetimes(timezones=st.just(UTC)),
        ident=st.one_of(st.uuids(), st.integers(min_value=-(2**53), max_value=2**53)),
        descending=st.booleans(),
    )
    def test_any_position_round_trips(
        self, at: datetime, ident: uuid.UUID | int, descending: bool
    ) -> None:
        position = Keyset(at=at, id=ident)
        cursor = encode_cursor(position, descending=descending)
        assert len(cursor) <= MAX_CURSOR_LENGTH
        id_type = int if isinstance(ident, int) else uuid.UUID
        assert decode_cursor(cursor, descending=descending, id_type=id_type) == position

    def test_other_offsets_keep_the_instant(self) -> None:
        local = AT.astimezone(timezone(timedelta(hours=5)))
        decoded = decode_cursor(
            encode_cursor(Keyset(at=local, id=1), descending=True), descending=True, id_type=int
        )
        assert decoded.at == AT


class TestInvalidCursors:
    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "not base64 !",
            "x" * (MAX_CURSOR_LENGTH + 1),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
            _raw("just a string"),
            _raw([AT.isoformat(), 1]),
            _raw({"t": AT.isoformat(), "i": 1}),
            _raw({"t": AT.isoformat(), "i": 1, "d": "desc", "x": 1}),
            _raw({"t": "yesterday", "i": 1, "d": "desc"}),
            _raw({"t": 12, "i": 1, "d": "desc"}),
            _raw({"t": "2024-05-17T12:30:45", "i": 1, "d": "desc"}),
            _raw({"t": AT.isoformat(), "i": "not-a-uuid", "d": "desc"}),
            _raw({"t": AT.isoformat(), "i": True, "d": "desc"}),
            _raw({"t": AT.isoformat(), "i": 1.5, "d": "desc"}),
            _raw({"t": AT.isoformat(), "i": 1, "d": "asc"}),
            _raw({"t": AT.isoformat(), "i": 2**63, "d": "desc"}),
            # Valid ISO 8601, but not expressible in UTC: the driver would overflow.
            _raw({"t": "0001-01-01T00:00:00+05:00", "i": 1, "d": "desc"}),
            _raw({"t": "9999-12-31T23:00:00-05:00", "i": 1, "d": "desc"}),
        ],
    )
    def test_is_rejected_as_invalid_cursor(self, cursor: str) -> None:
        with pytest.raises(InvalidCursor) as info:
            decode_cursor(cursor, descending=True, id_type=int)
        assert info.value.status_code == 400
        assert info.value.code == "invalid_cursor"

    def test_a_cursor_cannot_change_direction(self) -> None:
        cursor = encode_cursor(Keyset(at=AT, id=1), descending=True)
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, descending=False, id_type=int)

    @pytest.mark.parametrize(
        ("ident", "id_type"), [(1, uuid.UUID), (str(uuid.uuid4()), int)], ids=["int", "uuid"]
    )
    def test_an_id_of_another_type_is_rejected(
        self, ident: int | str, id_type: type[uuid.UUID] | type[int]
    ) -> None:
        with pytest.raises(InvalidCursor):
            decode_cursor(
                _raw({"t": AT.isoformat(), "i": ident, "d": "desc"}),
                descending=True,
                id_type=id_type,
            )


class TestPageFromRows:
    def _key(self, row: int) -> Keyset:
        return Keyset(at=AT, id=row)

    def test_the_extra_row_yields_a_cursor_at_the_last_item(self) -> None:
        page = page_from_rows([1, 2, 3], limit=2, key=self._key, descending=True)
        assert list(page.items) == [1, 2]
        assert page.next_cursor is not None
        assert decode_cursor(page.next_cursor, descending=True, id_type=int) == Keyset(at=AT, id=2)

    @pytest.mark.parametrize("rows", [[], [1], [1, 2]])
    def test_a_short_page_is_the_last(self, rows: list[int]) -> None:
        page = page_from_rows(rows, limit=2, key=self._key, descending=True)
        assert list(page.items) == rows
        assert page.next_cursor is None


class TestKeysetSql:
    table = Table("t", MetaData(), Column("id", Integer), Column("at", DateTime(timezone=True)))

    def test_after_compares_the_row_value_with_the_columns_types(self) -> None:
        for descending, operator in [(True, "<"), (False, ">")]:
            clause = keyset_after(
                self.table.c.at, self.table.c.id, Keyset(at=AT, id=7), descending=descending
            )
            compiled = clause.compile()
            assert str(compiled) == f"(t.at, t.id) {operator} (:param_1, :param_2)"
            # The values are bound with the columns' types, so type decorators apply.
            assert isinstance(compiled.binds["param_1"].type, DateTime)
            assert isinstance(compiled.binds["param_2"].type, Integer)

    def test_order_uses_the_id_as_tie_breaker(self) -> None:
        order = keyset_order(self.table.c.at, self.table.c.id, descending=True)
        assert [str(clause) for clause in order] == ["t.at DESC", "t.id DESC"]
        order = keyset_order(self.table.c.at, self.table.c.id, descending=False)
        assert [str(clause) for clause in order] == ["t.at ASC", "t.id ASC"]
