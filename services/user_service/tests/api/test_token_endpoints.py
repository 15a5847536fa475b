"""RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from servicekit.db import AsyncSession
from servicekit.testing import app_client, override_db_session
from user_service.config import IntrospectionSettings, UserServiceSettings
from user_service.main import create_app

from ..utils.auth import bearer, login
from ..utils.users import register

pytestmark = pytest.mark.integration

CLIENT = ("orders-service", "s3cret-orders-service-credential")


@pytest.fixture
async def svc(
    settings: UserServiceSettings, db_session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    introspection = IntrospectionSettings(clients={CLIENT[0]: SecretStr(CLIENT[1])})
    app: FastAPI = create_app(settings.model_copy(update={"introspection": introspection}))
    override_db_session(app, db_session)
    async with app_client(app) as client:
        yield client


async def _introspect(
    client: httpx.AsyncClient, token: str, auth: tuple[str, str] | None = CLIENT, **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/introspect",
        data={"token": token, **extra},
        auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
    )


class TestIntrospection:
    async def test_access_and_refresh_tokens(self, svc: httpx.AsyncClient) -> None:
        user = await register(svc)
        tokens = await login(svc, user["email"])
        access = (await _introspect(svc, tokens["access_token"])).json()
        assert access["active"] is True
        assert access["token_type"] == "access_token"
        assert access["sub"] == user["id"]
        assert access["sid"] == tokens["session_id"]
        assert access["scope"] == "user"
        refresh = (
            await _introspect(svc, tokens["refresh_token"], token_type_hint="refresh_token")
        ).json()
        assert refresh["active"] is True
        assert refresh["token_type"] == "refresh_token"

    async def test_revoked_and_unknown_tokens_are_inactive(self, svc: httpx.AsyncClient) -> None:
        user = await register(svc)
        tokens = await login(svc, user["email"])
        await svc.post("/api/v1/auth/logout", headers=bearer(tokens))
        assert (await _introspect(svc, tokens["access_token"])).json() == {"active": False}
        assert (await _introspect(svc, tokens["refresh_token"])).json() == {"active": False}
        assert (await _introspect(svc, "garbage")).json() == {"active": False}

    @pytest.mark.parametrize("auth", [None, (CLIENT[0], "wrong"), ("stranger", CLIENT[1])])
    async def test_callers_must_authenticate(
        self, svc: httpx.AsyncClient, auth: tuple[str, str] | None
    ) -> None:
        response = await _introspect(svc, "anything", auth=auth)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


class TestRevocation:
    async def test_revoking_a_refresh_token_ends_its_session(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        response = await client.post(
            "/api/v1/auth/revoke",
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        )
        assert response.status_code == 200
        assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401

    async def test_revoking_an_access_token_ends_its_session(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        response = await client.post("/api/v1/auth/revoke", data={"token": tokens["access_token"]})
        assert response.status_code == 200
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401

    async def test_unknown_tokens_answer_200(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/revoke", data={"token": "whatever"})
        assert response.status_code == 200
