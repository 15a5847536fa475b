"""Version 1 of the public API, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from notification_service.api.v1 import deliveries, notifications

PREFIX = "/api/v1"


def api_routers() -> list[tuple[str, APIRouter]]:
    """Every v1 router with its prefix."""
    return [(PREFIX, notifications.router), (PREFIX, deliveries.router)]
