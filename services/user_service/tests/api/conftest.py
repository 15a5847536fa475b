"""Fixtures and helpers for the admin API tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from servicekit.db import AsyncSession
from user_service.models import Role, User

from ..conftest import bearer, login, register

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens)


async def _set(db_session: AsyncSession, user_id: str, **values: Any) -> None:
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
        await _set(db_session, user["id"], role=role)
    return Account(user["id"], user["email"], await login(client, user["email"]))


@pytest.fixture
async def admin(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await account(client, db_session, role=Role.ADMIN)


@pytest.fixture
def prefix() -> str:
    """An email prefix only this test's users have: listings ignore everyone else."""
    return f"t{uuid.uuid4().hex[:10]}-"


def _assert_problem(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == error


async def _ids(client: httpx.AsyncClient, admin: Account, **params: Any) -> list[str]:
    response = await client.get("/api/v1/users", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]
