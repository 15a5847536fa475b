"""The access log names the request and, once its token is verified, the user."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ..utils.auth import bearer, login
from ..utils.users import register

pytestmark = pytest.mark.integration


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "http.request"
    ]


async def test_lines_carry_the_request_id_and_the_verified_user_only(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    caplog.clear()
    signed_in = await client.get(
        "/api/v1/users/me", headers={**bearer(tokens), "x-request-id": "req-signed-in-1"}
    )
    anonymous = await client.get("/api/v1/users/me", headers={"x-request-id": "req-anon-0001"})
    assert (signed_in.status_code, anonymous.status_code) == (200, 401)

    first, second = _access_lines(caplog)
    assert first["request_id"] == "req-signed-in-1"
    assert first["user_id"] == user["id"]
    # The next request on the same task starts without the previous one's user.
    assert second["request_id"] == "req-anon-0001"
    assert "user_id" not in second
