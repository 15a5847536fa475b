"""Application wiring only: ``uvicorn --factory user_service.main:create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.app import create_app as create_service_app
from servicekit.events import events_startup
from user_service.api import oauth, pages, wellknown
from user_service.api.openapi import document_password_policy
from user_service.api.v1 import api_routers
from user_service.config import UserServiceSettings, get_settings
from user_service.deps import replay_stored_response
from user_service.lifespan import identity_startup
from user_service.models import outbox
from user_service.services.idempotency import IdempotencyReplay

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(settings: UserServiceSettings | None = None) -> FastAPI:
    """Build the user service app (settings from the environment unless given)."""
    settings = settings or get_settings()
    app = create_service_app(
        settings,
        [*api_routers(), oauth.router, wellknown.router, pages.router],
        title="User service",
        description="Identity and user management: accounts, sessions and tokens.",
        on_startup=[events_startup(outbox), identity_startup],
    )
    document_password_policy(app, settings.password)
    app.add_exception_handler(IdempotencyReplay, replay_stored_response)
    return app
