"""Per-client rate limiting of the API and ``RateLimit-*`` headers on every response."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.client_ip import IPNetwork, client_ip
from servicekit.errors import problem_response
from servicekit.rate_limit import RateLimited, RateLimiter, RateLimitResult, most_restrictive

#: ``scope["state"]`` keys shared with the route-level limits (``request.state`` reads them).
CLIENT_IP = "client_ip"
RESULTS = "rate_limit_results"
LIMITER = "rate_limiter"
GLOBAL_RULE = "global_ip"


class RateLimitMiddleware:
    """Resolves the client address once (trusted-proxy aware), applies the ``global_ip``
    rule to requests under ``api_prefix``, and advertises the tightest limit in headers."""

    def __init__(
        self, app: ASGIApp, *, trusted_proxies: Sequence[IPNetwork], api_prefix: str = "/api/"
    ) -> None:
        self.app = app
        self.trusted_proxies = list(trusted_proxies)
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        ip = client_ip(scope, self.trusted_proxies)
        state[CLIENT_IP] = ip
        results: list[RateLimitResult] = []
        state[RESULTS] = results
        limiter: RateLimiter | None = state.get(LIMITER)
        if limiter is not None and scope.get("path", "").startswith(self.api_prefix):
            try:
                results.extend(await limiter.check([(GLOBAL_RULE, ip)]))
            except RateLimited as exc:
                response = problem_response(
                    status=exc.status_code,
                    code=exc.code,
                    detail=exc.detail,
                    instance=scope.get("path"),
                    headers=exc.headers,
                )
                await response(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                tightest = most_restrictive(results)
                if tightest is not None:
                    headers = MutableHeaders(scope=message)
                    if "ratelimit-limit" not in headers:
                        for name, value in tightest.headers().items():
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
