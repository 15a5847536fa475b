"""Admin payloads: the user listing's query, its page, and account changes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from servicekit.db.pagination import MAX_CURSOR_LENGTH, CursorPage
from user_service.models import Role
from user_service.schemas.fields import StoredText
from user_service.schemas.user import UserRead

MAX_PAGE_SIZE = 100


class UserListQuery(BaseModel):
    """Filters, order and page of ``GET /users``."""

    email_prefix: StoredText | None = Field(
        None,
        min_length=1,
        max_length=320,
        description="Emails starting with this text (any case; `%` and `_` match literally).",
    )
    is_active: bool | None = None
    is_verified: bool | None = None
    role: Role | None = None
    sort: Literal["created_at", "-created_at"] = Field(
        "-created_at", description="`-created_at` lists the newest first."
    )
    limit: int = Field(20, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` of the previous page, with the same filters and sort.",
    )

    @property
    def descending(self) -> bool:
        """Whether the newest users come first."""
        return self.sort.startswith("-")


class UserPage(CursorPage[UserRead]):
    """One page of users."""


def _omit_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "omitted" is not a value a client could send


class UserAdminUpdate(BaseModel):
    """Fields an administrator may change; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    # `SkipJsonSchema[None]`: the schema says what clients may send (null is refused below).
    role: Role | SkipJsonSchema[None] = Field(None, json_schema_extra=_omit_default)
    # Strict: `0` or `"no"` is a client bug here, not a boolean.
    is_active: StrictBool | SkipJsonSchema[None] = Field(
        None,
        description="`false` deactivates the account and revokes all its sessions.",
        json_schema_extra=_omit_default,
    )
    is_verified: StrictBool | SkipJsonSchema[None] = Field(None, json_schema_extra=_omit_default)

    @field_validator("role", "is_active", "is_verified", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Omitting a field leaves it unchanged; an explicit null is a client bug, not a no-op.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value
