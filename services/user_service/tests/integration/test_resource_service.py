"""A second FastAPI service trusts user_service tokens through servicekit.auth alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from servicekit.app import create_app as create_service_app
from servicekit.auth import CurrentPrincipal, Principal, RemoteJWKS, jwks_auth, require_scopes
from servicekit.settings import ServiceSettings
from servicekit.testing import app_client
from user_service.config import UserServiceSettings

from ..conftest import bearer, login, register

pytestmark = pytest.mark.integration


def orders_router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"user_id": str(principal.user_id), "scope": " ".join(sorted(principal.scopes))}

    @router.get("/admin-only")
    async def admin_only(
        principal: Annotated[Principal, Depends(require_scopes("admin"))],
    ) -> dict[str, str]:
        return {"ok": str(principal.user_id)}

    return router


def orders_app(
    users: httpx.AsyncClient, settings: UserServiceSettings, test_settings: ServiceSettings
) -> FastAPI:
    """A second service on the chassis, trusting the user service reached through ``users``
    (its JWKS over HTTP, its denylist in the same Redis namespace)."""
    resource_settings = test_settings.model_copy(
        update={
            "service_name": "orders",
            "redis": test_settings.redis.model_copy(
                update={"key_prefix": settings.redis.key_prefix}
            ),
        }
    )
    return create_service_app(
        resource_settings,
        [orders_router()],
        on_startup=[
            jwks_auth(
                "http://test/.well-known/jwks.json",
                issuer=settings.jwt.issuer,
                audience=settings.jwt.audience,
                http_client=users,
            )
        ],
    )


async def refused_within_a_second(service: httpx.AsyncClient, tokens: dict[str, Any]) -> bool:
    """Whether ``/whoami`` refuses ``tokens`` within one second (the revocation guarantee).

    Polls with short sleeps: in-process requests must let the event loop run the
    service's revocation feed."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() <= deadline:
        if (await service.get("/whoami", headers=bearer(tokens))).status_code == 401:
            return True
        await asyncio.sleep(0.02)
    return False


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
            "http://test/.well-known/jwks.json", client=client, refetch_interval_s=0.3
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
