"""The whole identity journey, across the user service and a second service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.settings import ServiceSettings
from servicekit.testing import app_client
from user_service.config import UserServiceSettings
from user_service.main import create_app
from user_service.models import User

from ..utils.auth import bearer, login
from ..utils.resource_service import orders_app, refused_within_a_second
from ..utils.users import PASSWORD, live_email

pytestmark = pytest.mark.integration

GRACE_S = 1


@pytest.fixture
async def users_api(
    settings: UserServiceSettings, db_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    jwt = settings.jwt.model_copy(update={"refresh_grace_seconds": GRACE_S})
    async with app_client(create_app(settings.model_copy(update={"jwt": jwt}))) as client:
        yield client
    async with db_engine.begin() as conn:
        await conn.execute(delete(User).where(User.email.like("live-%")))


@pytest.fixture
async def orders_api(
    users_api: httpx.AsyncClient, settings: UserServiceSettings, test_settings: ServiceSettings
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(orders_app(users_api, settings, test_settings)) as client:
        yield client


async def test_register_login_refresh_reuse_relogin_logout(
    users_api: httpx.AsyncClient, orders_api: httpx.AsyncClient
) -> None:
    email = live_email()
    created = await users_api.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201

    first = await login(users_api, email)
    me = await users_api.get("/api/v1/users/me", headers=bearer(first))
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert (await orders_api.get("/whoami", headers=bearer(first))).status_code == 200

    refreshed = await users_api.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert (await users_api.get("/api/v1/users/me", headers=bearer(second))).status_code == 200

    await asyncio.sleep(GRACE_S + 0.2)  # past the grace window, the old token is a stolen one
    reused = await users_api.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    for tokens in (first, second):
        assert (await users_api.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401
        assert await refused_within_a_second(orders_api, tokens)
    stolen_successor = await users_api.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert stolen_successor.status_code == 401

    again = await login(users_api, email)
    assert (await orders_api.get("/whoami", headers=bearer(again))).status_code == 200
    assert (await users_api.post("/api/v1/auth/logout", headers=bearer(again))).status_code == 204
    assert (await users_api.get("/api/v1/users/me", headers=bearer(again))).status_code == 401
    assert await refused_within_a_second(orders_api, again)
