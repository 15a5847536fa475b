"""Application wiring only: ``uvicorn --factory user_service.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_app as create_service_app
from user_service.api import wellknown
from user_service.api.v1 import api_router
from user_service.config import UserServiceSettings, get_settings
from user_service.lifespan import identity_startup


def create_app(settings: UserServiceSettings | None = None) -> FastAPI:
    """Build the user service app (settings from the environment unless given)."""
    settings = settings or get_settings()
    return create_service_app(
        settings,
        [api_router(), wellknown.router],
        title="User service",
        description="Identity and user management: accounts, sessions and tokens.",
        on_startup=[identity_startup],
    )
