"""The ``global_ip`` limit of every API request and the ``RateLimit-*`` response headers."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from servicekit.http.problem import problem_response
from servicekit.ratelimit.limiter import RateLimited, RateLimiter, RateLimitResult, most_restrictive

#: ``scope["state"]`` keys shared with the route-level limits (``request.state`` reads them).
CLIENT_IP = "client_ip"
RESULTS = "rate_limit_results"
LIMITER = "rate_limiter"
GLOBAL_RULE = "global_ip"

RawHeaders = list[tuple[bytes, bytes]]


async def check_global_limit(
    state: dict[str, object], ip: str, path: str, results: list[RateLimitResult]
) -> Response | None:
    """Apply ``global_ip`` to ``ip`` (results are appended); a 429 response when refused."""
    limiter = state.get(LIMITER)
    if not isinstance(limiter, RateLimiter):
        return None
    try:
        results.extend(await limiter.check([(GLOBAL_RULE, ip)]))
    except RateLimited as exc:
        return problem_response(
            status=exc.status_code,
            code=exc.code,
            detail=exc.detail,
            instance=path,
            headers=exc.headers,
        )
    return None


def add_rate_limit_headers(raw: RawHeaders, results: Sequence[RateLimitResult]) -> None:
    """Advertise the tightest limit met by the request, unless a handler already did."""
    tightest = most_restrictive(results)
    if tightest is not None and b"ratelimit-limit" not in {name for name, _ in raw}:
        raw.extend(tightest.raw_headers)
