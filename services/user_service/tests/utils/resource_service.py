"""A second service on the chassis that trusts the user service's tokens (``orders``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI

from servicekit.app import create_app as create_service_app
from servicekit.auth import CurrentPrincipal, Principal, jwks_auth, require_scopes
from servicekit.settings import ServiceSettings
from user_service.config import UserServiceSettings

from .auth import bearer


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
    """A second service on the chassis, trusting the user service reached through ``users``.

    It uses the user service's JWKS over HTTP and its denylist in the same Redis namespace.
    """
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
                "http://localhost/.well-known/jwks.json",
                issuer=settings.jwt.issuer,
                audience=settings.jwt.audience,
                http_client=users,
            )
        ],
    )


async def refused_within_a_second(service: httpx.AsyncClient, tokens: dict[str, Any]) -> bool:
    """Whether ``/whoami`` refuses ``tokens`` within one second (the revocation guarantee).

    Polls with short sleeps: in-process requests must let the event loop run the
    service's revocation feed.
    """
    deadline = time.monotonic() + 1.0
    while time.monotonic() <= deadline:
        if (await service.get("/whoami", headers=bearer(tokens))).status_code == 401:
            return True
        await asyncio.sleep(0.02)
    return False
