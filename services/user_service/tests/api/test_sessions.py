"""Listing and revoking one's own sessions."""

from __future__ import annotations

import uuid

import httpx
import pytest

from ..utils.auth import bearer, login
from ..utils.users import register

pytestmark = pytest.mark.integration


class TestSessions:
    async def test_list_marks_the_current_session(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        first = await login(client, user["email"])
        second = await login(client, user["email"])
        response = await client.get("/api/v1/users/me/sessions", headers=bearer(second))
        assert response.status_code == 200
        listed = response.json()
        assert {s["id"] for s in listed} == {first["session_id"], second["session_id"]}
        current = [s for s in listed if s["current"]]
        assert [s["id"] for s in current] == [second["session_id"]]
        assert listed[0]["user_agent"]
        assert listed[0]["ip"] == "127.0.0.1"

    async def test_revoke_one_session(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        phone = await login(client, user["email"])
        laptop = await login(client, user["email"])
        response = await client.delete(
            f"/api/v1/users/me/sessions/{phone['session_id']}", headers=bearer(laptop)
        )
        assert response.status_code == 204
        assert (await client.get("/api/v1/users/me", headers=bearer(phone))).status_code == 401
        assert (await client.get("/api/v1/users/me", headers=bearer(laptop))).status_code == 200
        listed = (await client.get("/api/v1/users/me/sessions", headers=bearer(laptop))).json()
        assert [s["id"] for s in listed] == [laptop["session_id"]]

    async def test_someone_elses_session_is_not_found(self, client: httpx.AsyncClient) -> None:
        alice = await login(client, (await register(client))["email"])
        bob = await login(client, (await register(client))["email"])
        response = await client.delete(
            f"/api/v1/users/me/sessions/{alice['session_id']}", headers=bearer(bob)
        )
        assert response.status_code == 404
        assert response.json()["error"] == "session_not_found"
        assert (await client.get("/api/v1/users/me", headers=bearer(alice))).status_code == 200
        response = await client.delete(
            f"/api/v1/users/me/sessions/{uuid.uuid4()}", headers=bearer(bob)
        )
        assert response.status_code == 404
