"""Escalating lockout of an account after repeated failed sign-ins.

``threshold`` failures within ``window_s`` lock the account for ``base_s``; each further
lock doubles, up to ``cap_s``; a success resets everything. Keys are derived from a digest
of the account name, so unknown accounts lock exactly like known ones (the lockout reveals
nothing) and no email appears in Redis.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings
from servicekit.ratelimit.limiter import (
    RateLimited,
    RateLimitResult,
    RateLimitUnavailable,
    identity_digest,
)
from servicekit.redis.client import REDIS_ERRORS, AnyRedis

if TYPE_CHECKING:
    from servicekit.redis.keys import KeySpace

# KEYS: failures, level, lock. ARGV: threshold, window ms, base ms, cap ms, level ttl ms.
_RECORD_FAILURE = """
local fails = redis.call('INCR', KEYS[1])
if fails == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if fails < tonumber(ARGV[1]) then return 0 end
local level = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local ttl = math.min(tonumber(ARGV[3]) * 2 ^ (level - 1), tonumber(ARGV[4]))
redis.call('SET', KEYS[3], '1', 'PX', math.floor(ttl))
redis.call('DEL', KEYS[1])
return math.floor(ttl)
"""

log = get_logger(__name__)
outage_log = ThrottledWarnings(log)


class LockoutSettings(BaseModel):
    """Failures before a lock, the counting window, and the lock's growth."""

    #: Switch the account lockout off.
    enabled: bool = True
    #: Failed sign-ins within `window_s` that lock the account.
    threshold: int = Field(5, ge=1)
    #: Window in which failures are counted.
    window_s: int = Field(900, ge=1)
    #: Length of the first lock; each further lock doubles.
    base_s: int = Field(60, ge=1)
    #: Longest lock.
    cap_s: int = Field(3600, ge=1)
    #: Answer 503 when Redis cannot say whether the account is locked.
    fail_closed: bool = True


class Lockout:
    """Check, record and clear sign-in failures for an account name."""

    def __init__(self, redis: AnyRedis, settings: LockoutSettings, *, keys: KeySpace) -> None:
        self.redis = redis
        self.settings = settings
        self._keyspace = keys
        self._record = redis.register_script(_RECORD_FAILURE)

    def _keys(self, account: str) -> list[str]:
        tag = self._keyspace.tagged("lockout", identity_digest(account))
        return [f"{tag}:failures", f"{tag}:level", f"{tag}:lock"]

    async def ensure_unlocked(self, account: str) -> None:
        """Raise 429 while the account is locked (503 if Redis can't tell and we fail closed)."""
        if not self.settings.enabled:
            return
        try:
            remaining_ms = await self.redis.pttl(self._keys(account)[2])
        except REDIS_ERRORS as exc:
            self._degraded(exc)
            return
        if remaining_ms > 0:
            metrics.rate_limit_rejections().labels("lockout").inc()
            seconds = math.ceil(remaining_ms / 1000)
            raise RateLimited(
                RateLimitResult(
                    rule="lockout",
                    allowed=False,
                    limit=self.settings.threshold,
                    remaining=0,
                    reset_s=seconds,
                    retry_after_s=seconds,
                )
            )

    async def record_failure(self, account: str) -> int:
        """Count a failure; returns the new lock's length in seconds (0 if none started)."""
        if not self.settings.enabled:
            return 0
        s = self.settings
        try:
            ttl_ms = await self._record(
                keys=self._keys(account),
                args=[s.threshold, s.window_s * 1000, s.base_s * 1000, s.cap_s * 1000, 86_400_000],
            )
        except REDIS_ERRORS as exc:
            self._degraded(exc)
            return 0
        if ttl_ms:
            log.warning("auth.account_locked", lock_s=int(ttl_ms) // 1000)
        return int(ttl_ms) // 1000

    async def clear(self, account: str) -> None:
        """Forget failures and locks after a successful sign-in."""
        if not self.settings.enabled:
            return
        try:
            await self.redis.delete(*self._keys(account))
        except REDIS_ERRORS as exc:
            log.warning("auth.lockout_clear_failed", error=repr(exc))

    def _degraded(self, exc: Exception) -> None:
        outcome = "fail_closed" if self.settings.fail_closed else "fail_open"
        metrics.redis_errors().labels("lockout", outcome).inc()
        outage_log.warning(
            "auth.lockout_redis_error", key=outcome, outcome=outcome, error=repr(exc)
        )
        if self.settings.fail_closed:
            raise RateLimitUnavailable from exc
