"""Sign-in, refresh rotation with reuse detection, sign-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select, update

from servicekit.db import AsyncSession
from servicekit.testing import app_client, override_db_session
from user_service.config import UserServiceSettings
from user_service.main import create_app
from user_service.models import User

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


class TestLogin:
    async def test_json_login_returns_a_token_pair(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        assert tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == 600
        assert tokens["scope"] == "user"
        assert len(tokens["refresh_token"]) >= 43
        me = await client.get("/api/v1/users/me", headers=bearer(tokens))
        assert me.status_code == 200
        assert me.json()["id"] == user["id"]

    async def test_oauth2_form_login_works(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        response = await client.post(
            "/api/v1/auth/login", data={"username": user["email"].upper(), "password": PASSWORD}
        )
        assert response.status_code == 200
        assert response.json()["access_token"]

    async def test_unknown_email_and_wrong_password_look_the_same(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": "not the password"}
        )
        unknown = await client.post(
            "/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
        )
        assert wrong.status_code == unknown.status_code == 401
        strip = {"request_id"}
        assert {k: v for k, v in wrong.json().items() if k not in strip} == {
            k: v for k, v in unknown.json().items() if k not in strip
        }
        assert wrong.json()["error"] == "invalid_credentials"

    async def test_malformed_login_is_422_and_other_media_types_415(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/api/v1/auth/login", json={"email": "x@example.com"})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["password"]
        # The form names its fields as the OAuth2 password form does, errors included.
        response = await client.post("/api/v1/auth/login", data={"username": "", "password": "p"})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["username"]
        response = await client.post(
            "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        response = await client.post(
            "/api/v1/auth/login", content=b"x", headers={"content-type": "text/plain"}
        )
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "body",
        [b"[" * 2000 + b"]" * 2000, b'{"email": [NaN, ' + b"[" * 2000 + b"]" * 2000 + b"]}"],
        ids=["deep", "deep-after-nan"],
    )
    async def test_deeply_nested_json_login_is_a_client_error(
        self, client: httpx.AsyncClient, body: bytes
    ) -> None:
        response = await client.post(
            "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] in {"json_too_deep", "validation_error"}


class TestAccessToken:
    async def test_missing_token_is_401_with_a_bearer_challenge(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/api/v1/users/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "not_authenticated"

    async def test_garbage_token_is_invalid_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": "Bearer not.a.jwt"}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"] == "invalid_token"


class TestRefresh:
    async def test_rotation_issues_a_new_opaque_token(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        first = await login(client, user["email"])
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert response.status_code == 200
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["session_id"] == first["session_id"]
        assert (await client.get("/api/v1/users/me", headers=bearer(second))).status_code == 200

    async def test_reuse_within_grace_returns_the_same_successor(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        first = await login(client, user["email"])
        body = {"refresh_token": first["refresh_token"]}
        a = (await client.post("/api/v1/auth/refresh", json=body)).json()
        b = (await client.post("/api/v1/auth/refresh", json=body)).json()
        assert a["refresh_token"] == b["refresh_token"]
        assert (await client.get("/api/v1/users/me", headers=bearer(b))).status_code == 200

    async def test_unknown_refresh_token_is_invalid_grant(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_grant"


@pytest.fixture
async def no_grace_client(
    settings: UserServiceSettings, db_session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    jwt = settings.jwt.model_copy(update={"refresh_grace_seconds": 0})
    app: FastAPI = create_app(settings.model_copy(update={"jwt": jwt}))
    override_db_session(app, db_session)
    async with app_client(app) as client:
        yield client


class TestReuseDetection:
    async def test_reuse_after_grace_revokes_the_session(
        self, no_grace_client: httpx.AsyncClient
    ) -> None:
        client = no_grace_client
        user = await register(client)
        first = await login(client, user["email"])
        rotated = (
            await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
            )
        ).json()
        await asyncio.sleep(0.01)
        reuse = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reuse.status_code == 401
        assert reuse.json()["error"] == "invalid_grant"
        # The whole session is gone: its newest access and refresh tokens too.
        assert (await client.get("/api/v1/users/me", headers=bearer(rotated))).status_code == 401
        again = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        assert again.status_code == 401
        # Other sessions of the user are untouched.
        other = await login(client, user["email"])
        assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 200


class TestLogout:
    async def test_logout_revokes_access_and_refresh_tokens(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        other = await login(client, user["email"])
        response = await client.post("/api/v1/auth/logout", headers=bearer(tokens))
        assert response.status_code == 204
        me = await client.get("/api/v1/users/me", headers=bearer(tokens))
        assert me.status_code == 401
        assert me.json()["error"] == "invalid_token"
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
        assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 200

    async def test_logout_all_revokes_every_session(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        sessions = [await login(client, user["email"]) for _ in range(3)]
        assert (
            await client.post("/api/v1/auth/logout-all", headers=bearer(sessions[0]))
        ).status_code == 204
        for tokens in sessions:
            assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401


class TestRehash:
    async def test_imported_bcrypt_hash_is_upgraded_at_login(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await register(client)
        bcrypt_hash = BcryptHasher().hash(PASSWORD)
        await db_session.execute(
            update(User).where(User.email == user["email"]).values(password_hash=bcrypt_hash)
        )
        await login(client, user["email"])
        stored = await db_session.scalar(
            select(User.password_hash).where(User.email == user["email"])
        )
        assert stored is not None
        assert stored.startswith("$argon2id$")
