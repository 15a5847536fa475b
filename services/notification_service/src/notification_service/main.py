"""Application wiring only: ``uvicorn --factory notification_service.main:create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notification_service.api.v1 import api_routers
from notification_service.config import NotificationServiceSettings, get_settings
from notification_service.lifespan import courier_startup
from servicekit.app import create_app as create_service_app
from servicekit.auth import jwks_auth

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI


def create_app(
    settings: NotificationServiceSettings | None = None,
    *,
    users_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the notification service app (settings from the environment unless given).

    ``users_client`` reaches the user service (its JWKS); by default one is made for
    ``users.url``.
    """
    settings = settings or get_settings()
    users = settings.users
    return create_service_app(
        settings,
        api_routers(),
        title="Notification service",
        description="The mail courier and the caller's notifications and mail preferences.",
        on_startup=[
            jwks_auth(
                f"{users.url.rstrip('/')}/.well-known/jwks.json",
                issuer=users.issuer,
                audience=users.audience,
                issuer_namespace=users.namespace,
                http_client=users_client,
            ),
            courier_startup,
        ],
    )
