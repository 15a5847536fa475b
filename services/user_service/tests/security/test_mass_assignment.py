"""Mass assignment: users cannot set privileged fields through their own endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration

PRIVILEGED: list[dict[str, Any]] = [
    {"role": "admin"},
    {"is_active": False},
    {"is_verified": True},
    {"id": "00000000-0000-4000-8000-000000000000"},
    {"version": 99},
    {"password_hash": "x"},
]


@pytest.mark.parametrize("field", PRIVILEGED, ids=lambda f: next(iter(f)))
async def test_registration_refuses_privileged_fields(
    client: httpx.AsyncClient, field: dict[str, Any]
) -> None:
    email = f"mass-{next(iter(field))}@example.com"
    response = await client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, **field}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == next(iter(field))
    # Nothing was created on the way.
    assert (
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).status_code == 401


@pytest.mark.parametrize("field", PRIVILEGED, ids=lambda f: next(iter(f)))
async def test_profile_update_refuses_privileged_fields(
    client: httpx.AsyncClient, field: dict[str, Any]
) -> None:
    user = await register(client)
    headers = bearer(await login(client, user["email"]))
    response = await client.patch(
        "/api/v1/users/me", json={"full_name": "Mallory", **field}, headers=headers
    )
    assert response.status_code == 422, response.text
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert me == user  # not even the allowed field changed: the whole request was refused
    assert me["role"] == "user"
    assert me["is_active"] is True
    assert me["is_verified"] is False
