"""The HTTP edge: CORS, trusted hosts, security headers, no server banner, no leaks.

No ``Server`` header and no traceback/SQL/secret in any 4xx/5xx body are also checked on
every response of the fuzz run against a real process (``tests/verify/fuzz_hooks.py``);
the 500 body is checked by ``libs/servicekit/tests/test_app.py::TestErrors``.
"""

from __future__ import annotations

import httpx
import pytest

from ..utils.clients import ClientWith

pytestmark = pytest.mark.integration

ALLOWED = "https://app.example.com"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class TestCors:
    async def test_an_unlisted_origin_gets_no_cors_grant(self, client_with: ClientWith) -> None:
        async with client_with(http={"cors_origins": [ALLOWED]}) as client:
            preflight = {"access-control-request-method": "POST"}
            evil = await client.options(
                "/api/v1/auth/login", headers={"origin": "https://evil.example.com", **preflight}
            )
            good = await client.options(
                "/api/v1/auth/login", headers={"origin": ALLOWED, **preflight}
            )
            simple = await client.get(
                "/health/live", headers={"origin": "https://evil.example.com"}
            )
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        assert "access-control-allow-origin" not in simple.headers
        assert good.status_code == 200
        assert good.headers["access-control-allow-origin"] == ALLOWED

    async def test_without_origins_no_cors_headers_at_all(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"origin": ALLOWED})
        assert not any(h.startswith("access-control-") for h in response.headers)


class TestTrustedHosts:
    async def test_an_unlisted_host_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/users/me", headers={"host": "evil.example.com"})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_host"

    async def test_a_listed_host_passes(self, client_with: ClientWith) -> None:
        async with client_with(http={"trusted_hosts": ["api.example.com"]}) as client:
            ok = await client.get("/openapi.json", headers={"host": "api.example.com"})
            refused = await client.get("/openapi.json", headers={"host": "test"})
        assert ok.status_code == 200
        assert refused.status_code == 400


class TestSecurityHeaders:
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/v1/users/me"), ("POST", "/api/v1/auth/login"), ("GET", "/nope")],
    )
    async def test_present_on_answers_and_errors(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await client.request(method, path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (name, response.headers)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "server" not in response.headers


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("path", "allow"),
        [("/api/v1/users", "GET, POST"), ("/api/v1/users/me", "DELETE, GET, PATCH")],
    )
    async def test_allow_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, path: str, allow: str
    ) -> None:
        response = await client.put(path)
        assert response.status_code == 405
        assert response.headers["allow"] == allow
        assert response.json()["error"] == "method_not_allowed"
