"""User payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from user_service.models import Role, User
from user_service.schemas.fields import EmailAddress, NewPassword, StoredText


class UserCreate(BaseModel):
    """Registration: the password policy is checked by the service (422 per rule)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    password: NewPassword = Field(repr=False)
    full_name: StoredText = Field("", max_length=200)


class UserRead(BaseModel):
    """A user as clients see it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    is_verified: bool
    created_at: datetime
    updated_at: datetime


class UserSnapshot(UserRead):
    """What the user cache stores: the public fields and the version (never the hash).

    Treated as immutable once built: the in-process cache tier shares one instance between
    requests, which is what lets :meth:`as_response` serialise it once.
    """

    version: int
    _response: RawResponse | None = PrivateAttr(default=None)

    def as_response(self) -> RawResponse:
        """The :class:`UserRead` JSON of this user and its headers, encoded on first use only.

        The headers are ``Content-Length``, ``Content-Type`` and ``ETag``.
        """
        # Straight from pydantic's private-attribute dict: ``self._response`` goes through
        # ``BaseModel.__getattr__``, a measurable cost on the hottest route.
        private: dict[str, RawResponse | None] = self.__pydantic_private__  # type: ignore[assignment]
        cached = private["_response"]
        if cached is None:
            body = self.model_dump_json(exclude={"version"}).encode()
            headers = (
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                (b"etag", user_etag(self).encode()),
            )
            cached = private["_response"] = (body, headers)
        return cached


#: A response body and its raw headers.
RawResponse = tuple[bytes, tuple[tuple[bytes, bytes], ...]]


def user_etag(user: User | UserSnapshot) -> str:
    """The strong ``ETag`` of a user: its version, matched by ``If-Match``."""
    return f'"{user.version}"'


class UserUpdate(BaseModel):
    """Profile fields a user may change themselves."""

    model_config = ConfigDict(extra="forbid")

    full_name: StoredText | None = Field(None, max_length=200)


class PasswordConfirmation(BaseModel):
    """The current password, re-entered to confirm a destructive action."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024, repr=False)


class PasswordChange(BaseModel):
    """Change the password; other sessions are signed out."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024, repr=False)
    new_password: NewPassword = Field(repr=False)


class SessionRead(BaseModel):
    """One signed-in device."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = Field(description="True for the session of the token making this request.")
