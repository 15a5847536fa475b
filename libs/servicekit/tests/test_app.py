"""The HTTP edge: problem+json errors, request ids, limits, hosts, headers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import Message

from servicekit.app import create_app
from servicekit.settings import Environment, ServiceSettings
from servicekit.testing import app_client

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
async def client(kit_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(kit_app) as client:
        yield client


class TestErrors:
    async def test_unknown_route_is_problem_json_with_request_id(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/nope")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["error"] == "not_found"
        assert body["status"] == 404
        assert body["instance"] == "/nope"
        assert body["request_id"] == response.headers["x-request-id"]

    async def test_malformed_json_lists_the_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/items", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["error"] == "validation_error"
        assert body["errors"]

    async def test_missing_field_is_named(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/items", json={})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["name"]

    async def test_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/items", json={"name": "x" * 2_000_000})
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "payload_too_large"

    async def test_streamed_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"x" * 65_536

        response = await client.post(
            "/items", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413

    @pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
    async def test_deeply_nested_json_is_400_before_parsing(
        self, client: httpx.AsyncClient, content_type: str
    ) -> None:
        body = b"[" * 2000 + b"]" * 2000  # 4 KB; Python's json recurses past its limit
        response = await client.post("/items", content=body, headers={"content-type": content_type})
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] == "json_too_deep"
        assert response.json()["request_id"] == response.headers["x-request-id"]

    async def test_json_at_the_depth_limit_reaches_the_app(self, client: httpx.AsyncClient) -> None:
        nested: object = "x"
        for _ in range(31):  # the 32nd level is the body object itself
            nested = [nested]
        response = await client.post("/items", json={"name": "n", "extra": nested})
        assert response.status_code != 400, response.text
        deeper = await client.post("/items", json={"name": "n", "extra": [nested]})
        assert deeper.json()["error"] == "json_too_deep"

    async def test_streamed_json_over_the_body_limit_is_413(
        self, client: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(40):
                yield b"x" * 65_536

        response = await client.post(
            "/items", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"

    async def test_disallowed_host_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/items/1", headers={"host": "evil.example.com"})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_host"

    async def test_probes_by_ip_pass_the_host_check(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"host": "10.1.2.3:8000"})
        assert response.status_code == 200

    async def test_unexpected_exception_is_500_without_details(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/items/boom/now")
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM
        assert "x-request-id" in response.headers
        text = response.text
        assert "secret-token-abc" not in text
        assert "SELECT" not in text
        assert "Traceback" not in text
        assert response.json()["error"] == "internal_error"
        assert response.headers["x-content-type-options"] == "nosniff"


class TestMiddleware:
    async def test_sane_incoming_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"x-request-id": "abc-123-def-456"})
        assert response.headers["x-request-id"] == "abc-123-def-456"

    async def test_insane_request_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"x-request-id": "bad id\twith junk"})
        assert response.headers["x-request-id"] != "bad id\twith junk"
        assert len(response.headers["x-request-id"]) == 32

    async def test_timing_and_security_headers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live")
        assert "app;dur=" in response.headers["server-timing"]
        assert float(response.headers["server-timing"].split("app;dur=")[1].split(",")[0]) >= 0
        assert "x-process-time" not in response.headers  # Server-Timing carries it
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "server" not in response.headers

    async def test_docs_are_served(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/docs")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert "Problem" in schema["components"]["schemas"]

    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_docs_load_every_asset_from_the_service(
        self, client: httpx.AsyncClient, page: str
    ) -> None:
        """The pages render with the network cut: nothing they reference is elsewhere."""
        response = await client.get(page)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "http" not in csp  # no other origin is trusted
        assert not re.findall(r"https?://", response.text)
        referenced = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", response.text)
        assets = [url for url in referenced if url != "/openapi.json"]
        assert len(assets) >= 2, referenced  # a script and a favicon at least
        for url in assets:
            assert url.startswith("/"), f"{page} references {url} on another origin"
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 0
        scripts = [u for u in assets if u.endswith(".js")]
        for url in scripts:
            assert "javascript" in (await client.get(url)).headers["content-type"]
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200


class TestClientDisconnect:
    async def test_a_client_gone_before_its_body_is_not_an_error(
        self, kit_app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/items/raw",
            "raw_path": b"/items/raw",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
            "state": {},
        }
        async with app_client(kit_app):
            await kit_app(scope, receive, send)
        assert sent == []  # nobody to answer
        assert "request.unhandled_exception" not in caplog.text


class TestCancelledAtShutdown:
    async def test_a_request_cancelled_by_the_server_gets_problem_json(
        self, kit_app: FastAPI
    ) -> None:
        # uvicorn cancels the requests still running when its drain timeout ends; its own
        # answer would be a plain-text 500.
        sent: list[Message] = []
        never = asyncio.Event()

        async def receive() -> Message:
            await never.wait()  # the body never comes: the endpoint waits until cancelled
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/items/raw",
            "raw_path": b"/items/raw",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"localhost"), (b"content-length", b"10")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
            "state": {},
        }
        async with app_client(kit_app):
            task = asyncio.create_task(kit_app(scope, receive, send))
            await asyncio.sleep(0.05)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        start, body = sent
        headers = dict(start["headers"])
        assert start["status"] == 503
        assert headers[b"content-type"] == PROBLEM.encode()
        assert headers[b"connection"] == b"close"
        assert headers[b"retry-after"] == b"1"
        problem = json.loads(body["body"])
        assert problem["error"] == "request_cancelled"
        assert problem["request_id"] == headers[b"x-request-id"].decode()


class TestExposure:
    """``/openapi.json``, ``/docs``, ``/redoc`` and ``/metrics`` are closed in production."""

    @staticmethod
    def _production(settings: ServiceSettings, **http: object) -> ServiceSettings:
        return settings.model_copy(
            update={
                "environment": Environment.PRODUCTION,
                "http": settings.http.model_copy(update=http),
            }
        )

    async def test_production_serves_neither_docs_nor_metrics(
        self, test_settings: ServiceSettings, kit_tables: None
    ) -> None:
        async with app_client(create_app(self._production(test_settings))) as client:
            for path in ("/openapi.json", "/docs", "/redoc", "/metrics"):
                response = await client.get(path)
                assert response.status_code == 404, path
                assert response.headers["content-type"] == PROBLEM
            assert (await client.get("/health/live")).status_code == 200

    async def test_docs_can_be_opened_in_production(
        self, test_settings: ServiceSettings, kit_tables: None
    ) -> None:
        app = create_app(self._production(test_settings, expose_docs=True))
        async with app_client(app) as client:
            assert (await client.get("/openapi.json")).status_code == 200
            assert (await client.get("/docs")).status_code == 200

    async def test_metrics_answer_only_their_bearer(
        self, test_settings: ServiceSettings, kit_tables: None
    ) -> None:
        token = "m" * 40
        app = create_app(self._production(test_settings, metrics_token=SecretStr(token)))
        async with app_client(app) as client:
            refused = await client.get("/metrics", headers={"authorization": "Bearer wrong"})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["error"] == "not_authenticated"
            assert (await client.get("/metrics")).status_code == 401
            scraped = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
            assert "http_requests_total" in scraped.text

    async def test_outside_production_both_are_open(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
