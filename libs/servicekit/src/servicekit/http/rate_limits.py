"""The ``global_ip`` limit of every API request and the ``RateLimit-*`` response headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.http.problem import problem_response
from servicekit.ratelimit.limiter import RateLimited, RateLimiter, RateLimitResult, most_restrictive

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.responses import Response

GLOBAL_RULE = "global_ip"

RawHeaders = list[tuple[bytes, bytes]]


async def check_global_limit(limiter: RateLimiter, ip: str, path: str) -> Response | None:
    """Apply ``global_ip`` to ``ip`` (the result joins the request's); a 429 when refused."""
    try:
        await limiter.check([(GLOBAL_RULE, ip)])
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
