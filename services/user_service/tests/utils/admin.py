"""The admin API tests' accounts with a role, and the user listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update

from servicekit.db import AsyncSession
from user_service.models import Role, User

from .auth import bearer, login
from .users import register


@dataclass(frozen=True)
class Account:
    """A signed-in user: id, email and token response."""

    id: str
    email: str
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens)


async def set_user_columns(db_session: AsyncSession, user_id: str, **values: Any) -> None:
    """Change a user behind the API's back (as a migration or another service would)."""
    await db_session.execute(update(User).where(User.id == uuid.UUID(user_id)).values(**values))


async def account(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    *,
    email: str | None = None,
    role: Role = Role.USER,
) -> Account:
    """A registered user with the given role, signed in after the role was set."""
    user = await register(client, email)
    if role is not Role.USER:
        await set_user_columns(db_session, user["id"], role=role)
    return Account(user["id"], user["email"], await login(client, user["email"]))


async def listed_ids(client: httpx.AsyncClient, admin: Account, **params: Any) -> list[str]:
    """The ids ``GET /api/v1/users`` lists for ``params``, in order (one page)."""
    response = await client.get("/api/v1/users", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]
