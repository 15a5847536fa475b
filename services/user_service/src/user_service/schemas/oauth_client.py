"""OAuth client registration payloads (admin API and CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

GrantType = Literal["client_credentials", "password", "refresh_token"]
#: Client ids are names (`notification-service`), never user ids, so a service token's
#: `sub` (its client id) cannot be taken for a user's.
CLIENT_ID_PATTERN = r"^[a-z][a-z0-9._-]{1,63}$"
Scope = Annotated[str, Field(pattern=r"^[a-z][a-z0-9:._-]{0,63}$")]


class ClientCreate(BaseModel):
    """A client to register; without ``client_secret`` a random one is generated."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=CLIENT_ID_PATTERN, examples=["notification-service"])
    grant_types: list[GrantType] = Field(default=["client_credentials"], min_length=1)
    scopes: list[Scope] = Field(default_factory=list, max_length=32, examples=[["users:read"]])
    audience: str | None = Field(
        None, min_length=1, max_length=255, description="`aud` of its tokens (default: ours)."
    )
    client_secret: SecretStr | None = Field(
        None, min_length=32, max_length=256, description="Import an existing secret instead."
    )


class ClientRead(BaseModel):
    """A registered client; its secret is never shown again after creation or rotation."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(serialization_alias="client_id")
    grant_types: list[str]
    scopes: list[str]
    audience: str
    enabled: bool
    created_at: datetime
    secret_rotated_at: datetime
    disabled_at: datetime | None


class ClientWithSecret(ClientRead):
    """A client with its new secret: shown once, store it now."""

    client_secret: str
