"""A second FastAPI service trusts user_service tokens through servicekit.auth alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from servicekit.auth import RemoteJWKS
from servicekit.settings import ServiceSettings
from servicekit.testing import app_client
from user_service.config import UserServiceSettings

from ..utils.auth import bearer, login
from ..utils.resource_service import orders_app
from ..utils.users import register

pytestmark = pytest.mark.integration


@pytest.fixture
async def orders(
    client: httpx.AsyncClient, settings: UserServiceSettings, test_settings: ServiceSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The resource service next to the test's user service."""
    async with app_client(orders_app(client, settings, test_settings)) as orders_client:
        yield orders_client


class TestResourceService:
    async def test_accepts_a_token_and_rejects_it_within_a_second_of_logout(
        self, client: httpx.AsyncClient, orders: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        response = await orders.get("/whoami", headers=bearer(tokens))
        assert response.status_code == 200
        assert response.json() == {"user_id": user["id"], "scope": "user"}

        assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 204
        logged_out = time.monotonic()
        # The guarantee is about when the revocation takes effect, so judge by when the
        # refused request was sent (a busy machine can make one request itself slow).
        while True:
            sent_at = time.monotonic() - logged_out
            response = await orders.get("/whoami", headers=bearer(tokens))
            if response.status_code == 401 or sent_at > 1.0:
                break
            await asyncio.sleep(0.02)
        assert response.status_code == 401
        assert sent_at <= 1.0
        assert response.json()["error"] == "invalid_token"

    async def test_scopes_are_enforced(
        self, client: httpx.AsyncClient, orders: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        response = await orders.get("/admin-only", headers=bearer(tokens))
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
        assert "insufficient_scope" in response.headers["www-authenticate"]

    async def test_missing_and_foreign_tokens_are_refused(self, orders: httpx.AsyncClient) -> None:
        assert (await orders.get("/whoami")).status_code == 401
        response = await orders.get("/whoami", headers={"Authorization": "Bearer a.b.c"})
        assert response.status_code == 401


class TestRemoteJwks:
    async def test_unknown_kids_refetch_at_most_once_per_interval(
        self, client: httpx.AsyncClient
    ) -> None:
        keys = RemoteJWKS(
            "http://localhost/.well-known/jwks.json", client=client, refetch_interval_s=0.3
        )
        jwks = (await client.get("/.well-known/jwks.json")).json()
        kid = jwks["keys"][0]["kid"]
        assert await keys.get(kid) is not None
        assert keys.fetch_count == 1
        for _ in range(5):  # a flood of garbage kids costs no extra fetch
            assert await keys.get("rotated-in-later") is None
        assert keys.fetch_count == 1
        await asyncio.sleep(0.35)
        assert await keys.get("rotated-in-later") is None
        assert keys.fetch_count == 2
        assert await keys.get(kid) is not None
        assert keys.fetch_count == 2
