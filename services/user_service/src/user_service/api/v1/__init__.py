"""Version 1 of the public API, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from user_service.api.v1 import (
    account,
    admin,
    audit,
    auth,
    clients,
    email_change,
    mfa,
    sessions,
    users,
)

PREFIX = "/api/v1"


def api_routers() -> list[tuple[str, APIRouter]]:
    """Every v1 router with its prefix, in matching order.

    They are included in the app one by one rather than through one ``/api/v1`` router:
    FastAPI matches nested routers level by level on every request, and a level less is
    a measurable share of the hottest route's time.
    """
    return [
        (PREFIX, users.router),
        (PREFIX, auth.router),
        (PREFIX, account.router),
        (PREFIX, email_change.router),
        (PREFIX, sessions.router),
        (PREFIX, mfa.router),
        (PREFIX, audit.router),
        (PREFIX, audit.admin_router),
        (PREFIX, clients.router),
        # Last: its `/users/{user_id}` must not shadow literal paths such as `/users/me`.
        (PREFIX, admin.router),
    ]
