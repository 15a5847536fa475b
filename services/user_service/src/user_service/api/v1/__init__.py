"""Version 1 of the public API, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from user_service.api.v1 import account, admin, auth, sessions, users


def api_router() -> APIRouter:
    """Every v1 router under ``/api/v1``."""
    router = APIRouter(prefix="/api/v1")
    router.include_router(users.router)
    router.include_router(auth.router)
    router.include_router(account.router)
    router.include_router(sessions.router)
    # Last: its `/users/{user_id}` must not shadow literal paths such as `/users/me`.
    router.include_router(admin.router)
    return router
