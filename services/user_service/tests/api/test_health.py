from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


class TestHealth:
    async def test_live(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_ready_checks_database_and_redis(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/ready")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "redis": "ok"}

    async def test_openapi_documents_the_service(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        assert schema["info"]["title"] == "User service"
