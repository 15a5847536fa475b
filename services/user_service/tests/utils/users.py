"""Users made through the API: registration with a unique email and a known password."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

#: The password of every user the helpers register.
PASSWORD = "correct horse battery staple"
#: The email prefix of the users the ``live_client`` fixture deletes after the test.
LIVE_PREFIX = "live-"


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    """Register a user with a unique email; returns the user body."""
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    response = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def live_email() -> str:
    """A unique email removed by the ``live_client`` fixture's clean-up."""
    return f"{LIVE_PREFIX}{uuid.uuid4().hex[:12]}@example.com"
