"""Revoked session ids in Redis, shared by every service that verifies access tokens.

PostgreSQL (in the issuing service) is the source of truth; Redis holds, for each revoked
session, a key living as long as an access token can. A sentinel key marks the list as
complete: if Redis restarted or was flushed the sentinel is gone, and verifiers stop
trusting the list until the issuing service has rebuilt it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from servicekit import metrics
from servicekit.errors import ServiceUnavailable
from servicekit.logging import get_logger

#: Answers "is this session revoked?" from the source of truth when Redis cannot.
RevocationFallback = Callable[[uuid.UUID], Awaitable[bool]]

log = get_logger(__name__)


class RevocationUnavailable(ServiceUnavailable):
    """Revocation cannot be checked, so the token is not accepted (fail closed)."""

    code = "revocation_unavailable"
    message = "Token revocation cannot be checked right now; retry shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class SessionDenylist:
    """``is_revoked`` costs one Redis round trip; ``revoke`` is written after commit."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str = "",
        namespace: str = "user_service",
        fallback: RevocationFallback | None = None,
    ) -> None:
        self.redis = redis
        self._prefix = f"{key_prefix}{namespace}:denylist:v1:"
        self.fallback = fallback

    def key(self, session_id: uuid.UUID) -> str:
        """The key marking ``session_id`` revoked."""
        return f"{self._prefix}{session_id}"

    @property
    def sentinel_key(self) -> str:
        """Present while the list is complete."""
        return f"{self._prefix}complete"

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        """Whether the session is revoked; falls back (or fails closed) when Redis can't say."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(self.sentinel_key)
                pipe.exists(self.key(session_id))
                complete, revoked = await pipe.execute()
        except RedisError as exc:
            return await self._degraded(session_id, "redis_error", exc)
        if not complete:
            return await self._degraded(session_id, "incomplete", None)
        return bool(revoked)

    async def _degraded(self, session_id: uuid.UUID, reason: str, exc: Exception | None) -> bool:
        outcome = "fallback" if self.fallback else "fail_closed"
        metrics.redis_errors().labels("denylist_check", outcome).inc()
        log.warning("auth.denylist_degraded", reason=reason, outcome=outcome, error=repr(exc))
        if self.fallback is None:
            raise RevocationUnavailable
        return await self.fallback(session_id)

    async def revoke(self, entries: Iterable[tuple[uuid.UUID, int]]) -> None:
        """Mark sessions revoked for ``ttl_s`` seconds each (``(session_id, ttl_s)`` pairs)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, ttl_s in entries:
                if ttl_s > 0:
                    pipe.set(self.key(session_id), "1", ex=ttl_s)
            await pipe.execute()

    async def is_complete(self) -> bool:
        """Whether the sentinel is present."""
        return bool(await self.redis.exists(self.sentinel_key))

    async def mark_complete(self) -> None:
        """Set the sentinel after a full rebuild."""
        await self.redis.set(self.sentinel_key, "1")
