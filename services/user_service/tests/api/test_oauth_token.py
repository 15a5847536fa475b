"""``POST /oauth/token`` through Authlib's client, and its RFC 6749 §5.2 errors."""

from __future__ import annotations

import base64

import httpx
import pytest
from authlib.integrations.base_client import OAuthError

from ..utils.auth import bearer
from ..utils.clients import ClientWith
from ..utils.oauth import TOKEN_URL, oauth_client
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


def _assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error


class TestPasswordAndRefreshGrants:
    async def test_fetch_and_refresh_with_authlib(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        async with oauth_client(
            client, client_id="first-party", token_endpoint_auth_method="none"
        ) as oauth:
            token = await oauth.fetch_token(TOKEN_URL, username=user["email"], password=PASSWORD)
            assert token["token_type"].lower() == "bearer"
            assert token["scope"] == "user"
            me = await client.get("/api/v1/users/me", headers=bearer(token))
            assert me.json()["id"] == user["id"]
            refreshed = await oauth.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
            assert refreshed["refresh_token"] != token["refresh_token"]
            me = await client.get("/api/v1/users/me", headers=bearer(refreshed))
            assert me.status_code == 200

    async def test_wrong_password_is_invalid_grant(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        async with oauth_client(client, client_id="first-party") as oauth:
            with pytest.raises(OAuthError) as raised:
                await oauth.fetch_token(TOKEN_URL, username=user["email"], password="wrong-one")
        assert raised.value.error == "invalid_grant"
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": user["email"], "password": "nope"},
        )
        _assert_oauth_error(response, "invalid_grant")

    async def test_refresh_token_of_an_ended_session_is_invalid_grant(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        login = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
        tokens = (await client.post("/oauth/token", data=login)).json()
        assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 204
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        _assert_oauth_error(await client.post("/oauth/token", data=refresh), "invalid_grant")

    async def test_reuse_revokes_the_session_though_the_answer_is_an_error(
        self, client_with: ClientWith
    ) -> None:
        """The revocation commits (``commit_changes``) before the RFC 6749 answer is made."""
        async with client_with(jwt={"refresh_grace_seconds": 0}) as client:
            user = await register(client)
            login = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
            first = (await client.post("/oauth/token", data=login)).json()
            refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
            second = (await client.post("/oauth/token", data=refresh)).json()
            _assert_oauth_error(await client.post("/oauth/token", data=refresh), "invalid_grant")
            newer = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
            _assert_oauth_error(await client.post("/oauth/token", data=newer), "invalid_grant")
            me = await client.get("/api/v1/users/me", headers=bearer(second))
            assert me.status_code == 401


class TestErrors:
    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"grant_type": "implicit"}, "unsupported_grant_type"),
            ({}, "invalid_request"),
            ({"grant_type": "password", "username": "a@example.com"}, "invalid_request"),
            ({"grant_type": "refresh_token"}, "invalid_request"),
            ({"grant_type": "refresh_token", "refresh_token": "x" * 43}, "invalid_grant"),
        ],
    )
    async def test_bad_requests(
        self, client: httpx.AsyncClient, data: dict[str, str], error: str
    ) -> None:
        _assert_oauth_error(await client.post("/oauth/token", data=data), error)

    @pytest.mark.parametrize(
        "header",
        [
            "Basic !!!not-base64!!!",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "Basic " + base64.b64encode(b":secret").decode(),
        ],
    )
    async def test_malformed_basic_header_is_invalid_client(
        self, client: httpx.AsyncClient, header: str
    ) -> None:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )
        _assert_oauth_error(response, "invalid_client", status=401)
        assert response.headers["www-authenticate"].startswith("Basic")

    async def test_two_client_authentication_methods_are_invalid_request(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": "x"},
            auth=("svc", "secret"),
        )
        _assert_oauth_error(response, "invalid_request")
