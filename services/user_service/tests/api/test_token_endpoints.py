"""OAuth clients through Authlib: client credentials, RFC 7009 revoke, RFC 7662 introspect."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.base_client import OAuthError

from ..utils.admin import Account
from ..utils.auth import bearer, login
from ..utils.oauth import TOKEN_URL, oauth_client
from ..utils.users import register

pytestmark = pytest.mark.integration

#: Every character RFC 6749 §2.3.1's form-encoding changes or keeps, as an operator's
#: `openssl rand -base64` secret would have them.
SECRET = "s3cret-_.~+/=" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
INTROSPECT_URL = "http://localhost/oauth/introspect"
REVOKE_URL = "http://localhost/oauth/revoke"


async def _create(
    client: httpx.AsyncClient, admin: Account, client_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"client_id": client_id, "client_secret": SECRET, **fields}
    response = await client.post("/api/v1/clients", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def service(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await _create(client, admin, "orders-service", scopes=["users:read"])


class TestClientCredentials:
    async def test_authlib_fetches_a_service_token(
        self, client: httpx.AsyncClient, service: dict[str, Any], admin: Account
    ) -> None:
        async with oauth_client(client, client_id="orders-service", client_secret=SECRET) as oauth:
            token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert "refresh_token" not in token
        assert token["scope"] == "users:read"
        claims = jwt.decode(token["access_token"], options={"verify_signature": False})
        assert claims["sub"] == claims["client_id"] == "orders-service"
        # users:read lets the service read any user, but it is no administrator.
        user = await register(client)
        read = await client.get(f"/api/v1/users/{user['id']}", headers=bearer(token))
        assert read.status_code == 200
        assert read.json()["email"] == user["email"]
        listing = await client.get("/api/v1/users", headers=bearer(token))
        assert listing.status_code == 403
        me = await client.get("/api/v1/users/me", headers=bearer(token))
        assert me.status_code == 403
        assert me.json()["error"] == "user_token_required"

    async def test_client_secret_post(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        async with oauth_client(
            client,
            client_id="orders-service",
            client_secret=SECRET,
            token_endpoint_auth_method="client_secret_post",
        ) as oauth:
            token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"

    async def test_rfc_encoded_basic_credentials(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        """RFC 6749 §2.3.1 form-encodes id and secret before Basic (as openid-client does)."""
        from urllib.parse import quote_plus

        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(quote_plus("orders-service"), quote_plus(SECRET)),
        )
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("data", "auth", "error", "status"),
        [
            ({"scope": "admin"}, ("orders-service", SECRET), "invalid_scope", 400),
            ({}, ("orders-service", "wrong"), "invalid_client", 401),
            ({}, ("nobody", SECRET), "invalid_client", 401),
            ({}, None, "unauthorized_client", 400),
        ],
    )
    async def test_refusals(
        self,
        client: httpx.AsyncClient,
        service: dict[str, Any],
        data: dict[str, str],
        auth: tuple[str, str] | None,
        error: str,
        status: int,
    ) -> None:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **data},
            auth=auth or httpx.USE_CLIENT_DEFAULT,
        )
        assert response.status_code == status, response.text
        assert response.json()["error"] == error

    async def test_a_grant_the_client_may_not_use(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        user = await register(client)
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": user["email"], "password": "x" * 10},
            auth=("orders-service", SECRET),
        )
        assert response.json()["error"] == "unauthorized_client"

    async def test_disabling_revokes_the_clients_tokens(
        self, client: httpx.AsyncClient, service: dict[str, Any], admin: Account
    ) -> None:
        async with oauth_client(client, client_id="orders-service", client_secret=SECRET) as oauth:
            token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
            user = await register(client)
            url = f"/api/v1/users/{user['id']}"
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            disabled = await client.post(
                "/api/v1/clients/orders-service/disable", headers=admin.headers
            )
            assert disabled.json()["enabled"] is False
            assert (await client.get(url, headers=bearer(token))).status_code == 401
            with pytest.raises(OAuthError) as raised:
                await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
            assert raised.value.error == "invalid_client"

    async def test_rotated_secret(
        self, client: httpx.AsyncClient, service: dict[str, Any], admin: Account
    ) -> None:
        rotated = await client.post(
            "/api/v1/clients/orders-service/rotate-secret", headers=admin.headers
        )
        new_secret = rotated.json()["client_secret"]
        form = {"grant_type": "client_credentials"}
        old = await client.post("/oauth/token", data=form, auth=("orders-service", SECRET))
        assert old.status_code == 401
        new = await client.post("/oauth/token", data=form, auth=("orders-service", new_secret))
        assert new.status_code == 200
        listed = (await client.get("/api/v1/clients", headers=admin.headers)).json()
        assert "client_secret" not in next(c for c in listed if c["client_id"] == "orders-service")


class TestIntrospection:
    async def test_access_and_refresh_tokens(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        async with oauth_client(client, client_id="orders-service", client_secret=SECRET) as oauth:
            access = (await oauth.introspect_token(INTROSPECT_URL, tokens["access_token"])).json()
            refresh = await oauth.introspect_token(
                INTROSPECT_URL, tokens["refresh_token"], token_type_hint="refresh_token"
            )
        assert access["active"] is True
        assert access["token_type"] == "Bearer"
        assert access["sub"] == user["id"]
        assert access["sid"] == tokens["session_id"]
        assert access["scope"] == "user"
        assert access["client_id"] == "first-party"  # the token's client, not the caller
        assert refresh.json()["active"] is True
        assert refresh.json()["client_id"] == "first-party"

    async def test_revoked_and_unknown_tokens_are_inactive(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        await client.post("/api/v1/auth/logout", headers=bearer(tokens))
        async with oauth_client(client, client_id="orders-service", client_secret=SECRET) as oauth:
            for token in (tokens["access_token"], tokens["refresh_token"], "garbage"):
                response = await oauth.introspect_token(INTROSPECT_URL, token)
                assert response.json() == {"active": False}

    @pytest.mark.parametrize(
        "auth", [None, ("orders-service", "wrong"), ("stranger", SECRET), ("first-party", "")]
    )
    async def test_callers_must_authenticate(
        self, client: httpx.AsyncClient, service: dict[str, Any], auth: tuple[str, str] | None
    ) -> None:
        response = await client.post(
            "/oauth/introspect",
            data={"token": "anything"},
            auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


class TestRevocation:
    async def test_authlib_revokes_a_refresh_token(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        async with oauth_client(
            client, client_id="first-party", token_endpoint_auth_method="none"
        ) as oauth:
            response = await oauth.revoke_token(
                REVOKE_URL, tokens["refresh_token"], token_type_hint="refresh_token"
            )
        assert response.status_code == 200
        assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401

    async def test_a_client_revokes_only_its_own_tokens(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        """RFC 7009 §2.1: a token issued to another client is refused, and stays valid."""
        user = await register(client)
        tokens = await login(client, user["email"])
        async with oauth_client(client, client_id="orders-service", client_secret=SECRET) as oauth:
            for token in (tokens["refresh_token"], tokens["access_token"]):
                response = await oauth.revoke_token(REVOKE_URL, token)
                assert response.status_code == 400
                assert response.json()["error"] == "unauthorized_client"
            own = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
            # A service token has no session to end: revoking it answers 200 and changes
            # nothing (disabling the client revokes its tokens).
            assert (await oauth.revoke_token(REVOKE_URL, own["access_token"])).status_code == 200
        assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200

    async def test_a_public_client_revokes_an_access_token(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        response = await client.post("/oauth/revoke", data={"token": tokens["access_token"]})
        assert response.status_code == 200
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401

    async def test_wrong_client_credentials_are_refused(
        self, client: httpx.AsyncClient, service: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/oauth/revoke", data={"token": "whatever"}, auth=("orders-service", "wrong")
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    async def test_unknown_tokens_answer_200(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/oauth/revoke", data={"token": "whatever"})
        assert response.status_code == 200
