"""``servicekit.client`` against a real upstream app.

Which calls retry, what is propagated, how errors surface, one token fetch for many calls.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from servicekit.client import (
    ClientCredentials,
    CredentialsRejected,
    ServiceClient,
    UpstreamProblem,
    UpstreamUnavailable,
)
from servicekit.context import request_id_var

pytestmark = pytest.mark.unit

REQUEST_ID = "0af7651916cd43dd8448eb211c80319c"


class Upstream:
    """A small upstream service recording what it was sent."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        self.tokens_issued = 0
        self.refuse_credentials = False
        self.app = FastAPI()
        self.app.post("/oauth/token")(self.token)
        self.app.api_route("/flaky", methods=["GET", "POST"])(self.flaky)
        self.app.get("/missing")(self.missing)
        self.app.get("/echo")(self.echo)

    async def token(self, request: Request) -> Response:
        await asyncio.sleep(0.01)  # long enough for concurrent callers to pile up
        if self.refuse_credentials:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self.tokens_issued += 1
        return JSONResponse({"access_token": f"t{self.tokens_issued}", "expires_in": 600})

    async def flaky(self, request: Request) -> Response:
        self.calls[request.method] += 1
        if self.calls[request.method] < 3:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"ok": True})

    async def missing(self) -> Response:
        body = {"type": "urn:problem-type:not_found", "status": 404, "error": "user_not_found"}
        return JSONResponse(body, status_code=404, media_type="application/problem+json")

    async def echo(self, request: Request) -> dict[str, Any]:
        self.headers.append(dict(request.headers))
        return {}


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


def _client(upstream: Upstream, **kwargs: Any) -> tuple[ServiceClient, ClientCredentials]:
    transport = httpx.ASGITransport(app=upstream.app)
    http = httpx.AsyncClient(transport=transport, base_url="http://up")
    credentials = ClientCredentials(
        http, token_url="http://up/oauth/token", client_id="svc", client_secret=SecretStr("s+/=")
    )
    client = ServiceClient(
        "up", "http://up", credentials=credentials, transport=transport, **kwargs
    )
    return client, credentials


class TestRetries:
    async def test_idempotent_requests_are_retried(self, upstream: Upstream) -> None:
        client, _ = _client(upstream, attempts=3)
        assert await client.get_json("/flaky") == {"ok": True}
        assert upstream.calls["GET"] == 3

    async def test_a_post_is_sent_once(self, upstream: Upstream) -> None:
        client, _ = _client(upstream, attempts=3)
        with pytest.raises(UpstreamUnavailable):
            await client.request("POST", "/flaky")
        assert upstream.calls["POST"] == 1

    async def test_a_post_with_an_idempotency_key_is_retried(self, upstream: Upstream) -> None:
        client, _ = _client(upstream, attempts=3)
        response = await client.request("POST", "/flaky", headers={"Idempotency-Key": "k1"})
        assert response.status_code == 200

    async def test_a_problem_is_typed_and_not_retried(self, upstream: Upstream) -> None:
        client, _ = _client(upstream)
        with pytest.raises(UpstreamProblem) as raised:
            await client.get_json("/missing")
        assert raised.value.status == 404
        assert raised.value.problem_code == "user_not_found"


class TestTokens:
    async def test_one_fetch_for_concurrent_calls(self, upstream: Upstream) -> None:
        client, credentials = _client(upstream)
        await asyncio.gather(*(client.get_json("/echo") for _ in range(20)))
        assert upstream.tokens_issued == credentials.fetches == 1
        assert {h["authorization"] for h in upstream.headers} == {"Bearer t1"}

    async def test_refused_credentials_are_typed(self, upstream: Upstream) -> None:
        upstream.refuse_credentials = True
        client, _ = _client(upstream)
        with pytest.raises(CredentialsRejected) as raised:
            await client.get_json("/echo")
        assert raised.value.error == "invalid_client"


class TestPropagation:
    async def test_request_id_and_traceparent(self, upstream: Upstream) -> None:
        client, _ = _client(upstream)
        token = request_id_var.set(REQUEST_ID)
        try:
            await client.get_json("/echo")
        finally:
            request_id_var.reset(token)
        sent = upstream.headers[0]
        assert sent["x-request-id"] == REQUEST_ID
        version, trace_id, span_id, _flags = sent["traceparent"].split("-")
        assert (version, trace_id, len(span_id)) == ("00", REQUEST_ID, 16)
