"""Atomic rate limits (GCRA in one Lua script) with IETF ``RateLimit-*`` headers.

Each check touches one key, so it is Redis-Cluster safe. Several rules of one request are
sent in one pipeline. When Redis cannot answer, a rule either fails closed (503, for
authentication: no unlimited password guessing) or open (the request proceeds); both are
counted and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from servicekit.context import record_rate_limits
from servicekit.errors import AppError, ServiceUnavailable
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings
from servicekit.ratelimit.refill_queue import RefillQueue
from servicekit.redis.client import REDIS_ERRORS, AnyRedis

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servicekit.redis.keys import KeySpace
    from servicekit.settings import RuleSettings

# Generic Cell Rate Algorithm. KEYS[1] the bucket; ARGV[1] emission interval (ms),
# ARGV[2] burst (requests), ARGV[3] cost. Returns {allowed, remaining, reset_ms, retry_ms}.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at > now then
  local remaining = math.floor((now - (tat - interval * burst)) / interval)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((now - allow_at) / interval)
return {1, remaining, new_tat - now, 0}
"""

log = get_logger(__name__)
outage_log = ThrottledWarnings(log)


@dataclass(frozen=True)
class RateLimitResult:
    """The state of one rule after a request."""

    rule: str
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` headers (draft-ietf-httpapi-ratelimit-headers)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after_s))
        return headers

    @cached_property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` encoded once: a lease hands one result to many responses."""
        return [(k.lower().encode(), v.encode()) for k, v in self.headers().items()]


class RateLimited(AppError):
    """Too many requests for a rule (429 with ``Retry-After``)."""

    status_code = 429
    code = "rate_limited"
    message = "Too many requests; retry after the time in Retry-After."

    def __init__(self, result: RateLimitResult) -> None:
        super().__init__(headers=result.headers())


class RateLimitUnavailable(ServiceUnavailable):
    """Limits cannot be checked and this route fails closed."""

    code = "rate_limit_unavailable"
    message = "This operation is temporarily unavailable; retry shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


@dataclass
class _Lease:
    """Slots taken from Redis in advance and spent by this instance."""

    tokens: int
    expires_at: float
    result: RateLimitResult


_MAX_LEASES = 10_000


def identity_digest(value: str) -> str:
    """Keys never hold emails or tokens in clear."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimiter:
    """Checks named rules against identities; rules come from settings."""

    def __init__(
        self,
        redis: AnyRedis,
        rules: dict[str, RuleSettings],
        *,
        keys: KeySpace,
        enabled: bool = True,
    ) -> None:
        self.redis = redis
        self.rules = rules
        self.enabled = enabled
        self._keys = keys
        self._script = redis.register_script(GCRA)
        self._leases: dict[tuple[str, str], _Lease] = {}
        # One lease refill in flight per bucket: concurrent requests queue behind it instead
        # of each taking (and overwriting) a lease of their own.
        self._queues: dict[tuple[str, str], RefillQueue[RateLimitResult]] = {}

    def _interval_ms(self, rule: str) -> float:
        settings = self.rules[rule]
        return settings.period_s * 1000 / settings.limit

    def key(self, rule: str, identity: str) -> str:
        """The bucket of ``identity`` under ``rule``."""
        return self._keys.tagged(f"ratelimit:{rule}", identity_digest(identity))

    async def check(self, checks: Sequence[tuple[str, str]]) -> list[RateLimitResult]:
        """Consume one request from each ``(rule, identity)``; raise on the first refusal.

        Raises :class:`RateLimited` (429) or, when Redis fails and a rule fails closed,
        :class:`RateLimitUnavailable` (503). Unknown rule names are ignored. The results
        join the current request's, so its ``RateLimit-*`` headers name the tightest.
        """
        active = [(name, ident) for name, ident in checks if name in self.rules]
        if not self.enabled or not active:
            return []
        results: list[RateLimitResult] = []
        try:
            for name, ident in active:
                result = self._from_lease(name, ident) or await self._take(name, ident)
                if not result.allowed:
                    metrics.rate_limit_rejections().labels(result.rule).inc()
                    log.info("rate_limit.rejected", rule=result.rule)
                    raise RateLimited(result)
                results.append(result)
        except REDIS_ERRORS as exc:
            closed = [name for name, _ in active if self.rules[name].fail_closed]
            outcome = "fail_closed" if closed else "fail_open"
            metrics.redis_errors().labels("rate_limit", outcome).inc()
            outage_log.warning(
                "rate_limit.redis_error",
                key=outcome,
                outcome=outcome,
                rules=[n for n, _ in active],
                error=repr(exc),
            )
            if closed:
                raise RateLimitUnavailable from exc
            return []
        record_rate_limits(results)
        return results

    def _from_lease(self, rule: str, identity: str) -> RateLimitResult | None:
        lease = self._leases.get((rule, identity))
        if lease is None or lease.tokens <= 0 or lease.expires_at < time.monotonic():
            return None
        lease.tokens -= 1
        return lease.result

    async def _take(self, rule: str, identity: str) -> RateLimitResult:
        """Consume from Redis; with a lease, queue behind a refill already in flight."""
        bucket = (rule, identity)
        if self.rules[rule].lease == 1:
            return await self._consume(rule, identity)
        queue = self._queues.setdefault(bucket, RefillQueue())
        while queue.refilling:
            shared = await queue.wait()
            if shared is not None:
                return shared
            result = self._from_lease(rule, identity)
            if result is not None:
                return result
        queue.refilling = True
        try:
            result = await self._consume(rule, identity)
        except asyncio.CancelledError:
            queue.refilled(0)
            raise
        except Exception as exc:
            queue.share(exc)
            raise
        finally:
            self._drop_if_idle(bucket, queue)
        if result.allowed:
            lease = self._leases.get(bucket)
            queue.refilled(lease.tokens if lease is not None else 0)
        else:
            queue.share(result)
        self._drop_if_idle(bucket, queue)
        return result

    def _drop_if_idle(self, bucket: tuple[str, str], queue: RefillQueue[RateLimitResult]) -> None:
        if queue.idle and self._queues.get(bucket) is queue:
            del self._queues[bucket]

    async def _consume(self, rule: str, identity: str) -> RateLimitResult:
        """One EVALSHA (a pipeline would first ask whether the script is loaded)."""
        settings = self.rules[rule]
        key = self.key(rule, identity)
        cost = settings.lease
        reply = await self._script(keys=[key], args=[self._interval_ms(rule), settings.limit, cost])
        if not reply[0] and cost > 1:  # near the limit: fall back to exact checks
            cost = 1
            reply = await self._script(
                keys=[key], args=[self._interval_ms(rule), settings.limit, 1]
            )
        result = RateLimitResult(
            rule=rule,
            allowed=bool(reply[0]),
            limit=settings.limit,
            remaining=int(reply[1]),
            reset_s=math.ceil(int(reply[2]) / 1000),
            retry_after_s=math.ceil(int(reply[3]) / 1000),
        )
        if result.allowed and cost > 1:
            if len(self._leases) > _MAX_LEASES:
                self._leases.clear()
            lease_s = settings.period_s  # the slots are already taken; keep them a window
            self._leases[(rule, identity)] = _Lease(
                tokens=cost - 1, expires_at=time.monotonic() + lease_s, result=result
            )
        return result


def most_restrictive(results: Sequence[RateLimitResult]) -> RateLimitResult | None:
    """The result to advertise in headers: the fewest requests left."""
    if len(results) == 1:  # most requests: the global limit alone
        return results[0]
    return min(results, key=lambda r: (r.remaining, -r.reset_s), default=None)
