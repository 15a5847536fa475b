"""User payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from user_service.models import Role


class UserCreate(BaseModel):
    """Registration: the password policy is checked by the service (422 per rule)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=1, max_length=1024, repr=False)
    full_name: str = Field("", max_length=200)


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
