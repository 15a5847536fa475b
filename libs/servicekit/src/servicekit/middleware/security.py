"""Trusted-host checking and security response headers."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import problem_response

# Swagger UI and ReDoc load their scripts from a CDN; they get a looser policy.
_DOCS_PATHS = ("/docs", "/redoc")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'"
)


# Probes and scrapers address a pod by IP; these paths answer whatever the Host header.
_HOST_EXEMPT_PATHS = ("/health/", "/metrics")


class TrustedHostMiddleware:
    """Answer 400 problem+json to a ``Host`` header not in the allowed list.

    Entries are exact host names or ``*.example.com`` wildcards; ``*`` allows every host.
    Health and metrics paths are exempt: orchestrators probe them by pod IP.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.exact = {h.lower() for h in allowed_hosts if not h.startswith("*.")}
        self.suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))

    def is_allowed(self, host: str) -> bool:
        """Whether ``host`` (without port) is trusted."""
        host = host.lower()
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.allow_any
            or scope["type"] not in {"http", "websocket"}
            or scope.get("path", "").startswith(_HOST_EXEMPT_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        raw = Headers(scope=scope).get("host", "")
        host = raw.rsplit(":", 1)[0] if not raw.endswith("]") else raw
        if self.is_allowed(host.strip("[]")):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            status=400,
            code="invalid_host",
            detail="The Host header is not served here.",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """Add conservative security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope.get("path", "").startswith(_DOCS_PATHS)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("referrer-policy", "no-referrer")
                headers.setdefault("cross-origin-opener-policy", "same-origin")
                headers.setdefault("cross-origin-resource-policy", "same-origin")
                headers.setdefault("permissions-policy", "interest-cohort=()")
                headers.setdefault("content-security-policy", _DOCS_CSP if is_docs else _API_CSP)
                headers.setdefault("cache-control", "no-store")
                if self.hsts:
                    headers.setdefault(
                        "strict-transport-security", "max-age=63072000; includeSubDomains"
                    )
            await send(message)

        await self.app(scope, receive, send_wrapper)
