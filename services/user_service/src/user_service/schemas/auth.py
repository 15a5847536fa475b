"""Token endpoint payloads."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from user_service.schemas.fields import StoredText

_SECRET: dict[str, Any] = {"format": "password"}


class LoginRequest(BaseModel):
    """JSON login; the form variant sends ``username`` and ``password`` (OAuth2)."""

    model_config = ConfigDict(extra="ignore")

    email: StoredText = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024, repr=False)


class RefreshRequest(BaseModel):
    """Exchange a refresh token for a new pair."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=16, max_length=256, repr=False)


class TokenRequest(BaseModel):
    """An RFC 6749 token request; which fields apply depends on ``grant_type``.

    ``password``: ``username`` (the email) and ``password``. ``refresh_token``:
    ``refresh_token``. ``client_credentials``: the client authenticates (HTTP Basic, or
    ``client_id`` and ``client_secret`` here). ``scope`` narrows what is granted.
    """

    grant_type: str = Field(
        min_length=1, max_length=64, examples=["password", "refresh_token", "client_credentials"]
    )
    username: StoredText | None = Field(None, max_length=320, description="The account's email.")
    password: str | None = Field(None, max_length=1024, repr=False, json_schema_extra=_SECRET)
    refresh_token: str | None = Field(None, max_length=256, repr=False)
    scope: str | None = Field(None, max_length=1000, description="Space-separated scopes.")
    client_id: StoredText | None = Field(None, max_length=128)
    client_secret: str | None = Field(None, max_length=256, repr=False, json_schema_extra=_SECRET)


class TokenForm(BaseModel):
    """A revocation (RFC 7009) or introspection (RFC 7662) request."""

    token: str = Field(min_length=1, max_length=4096, repr=False)
    token_type_hint: str | None = Field(None, max_length=64)
    client_id: StoredText | None = Field(None, max_length=128)
    client_secret: str | None = Field(None, max_length=256, repr=False, json_schema_extra=_SECRET)


class TokenResponse(BaseModel):
    """OAuth2 token response (RFC 6749 §5.1); a client-credentials grant has no refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Access-token lifetime in seconds.")
    refresh_token: str | None = None
    scope: str
    session_id: uuid.UUID | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2; inactive tokens carry only ``active: false``."""

    active: bool
    #: The token's type for using it (RFC 6749 §7.1): ``Bearer``; absent for refresh tokens.
    token_type: Literal["Bearer"] | None = None
    sub: str | None = None
    sid: str | None = None
    scope: str | None = None
    exp: int | None = None
    jti: str | None = None
    iss: str | None = None
    aud: str | None = None
    client_id: str | None = None


class OAuthError(BaseModel):
    """RFC 6749 §5.2 error response of the OAuth endpoints."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]
    error_description: str | None = None
