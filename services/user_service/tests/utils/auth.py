"""Signing in through the API and presenting the access token."""

from __future__ import annotations

from typing import Any

import httpx

from .users import PASSWORD


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in with JSON; returns the token response."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header for a token response."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}
