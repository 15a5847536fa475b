"""Version 1 of the public API, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter


def api_router() -> APIRouter:
    """Every v1 router under ``/api/v1``."""
    return APIRouter(prefix="/api/v1")
