"""Token endpoint payloads."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    """JSON login; the form variant sends ``username`` and ``password`` (OAuth2)."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024, repr=False)


class RefreshRequest(BaseModel):
    """Exchange a refresh token for a new pair."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=16, max_length=256, repr=False)


class TokenResponse(BaseModel):
    """OAuth2-style token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Access-token lifetime in seconds.")
    refresh_token: str
    scope: str
    session_id: uuid.UUID


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2; inactive tokens carry only ``active: false``."""

    active: bool
    token_type: Literal["access_token", "refresh_token"] | None = None
    sub: str | None = None
    sid: str | None = None
    scope: str | None = None
    exp: int | None = None
    jti: str | None = None
    iss: str | None = None
    aud: str | None = None
    client_id: str | None = None
