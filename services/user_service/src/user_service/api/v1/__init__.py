"""Version 1 of the public API, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from user_service.api.v1 import auth, users


def api_router() -> APIRouter:
    """Every v1 router under ``/api/v1``."""
    router = APIRouter(prefix="/api/v1")
    router.include_router(users.router)
    router.include_router(auth.router)
    return router
