"""Rate limits (GCRA in Lua, one round trip), the account lockout and lease refills."""

from servicekit.ratelimit.limiter import (
    RateLimited,
    RateLimiter,
    RateLimitResult,
    RateLimitUnavailable,
    most_restrictive,
)
from servicekit.ratelimit.lockout import Lockout, LockoutSettings
from servicekit.ratelimit.refill_queue import RefillQueue

__all__ = [
    "Lockout",
    "LockoutSettings",
    "RateLimitResult",
    "RateLimitUnavailable",
    "RateLimited",
    "RateLimiter",
    "RefillQueue",
    "most_restrictive",
]
