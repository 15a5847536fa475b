"""Revoked session ids in Redis, shared by every service that verifies access tokens.

PostgreSQL (in the issuing service) is the source of truth; Redis holds, for each revoked
session, a key living as long as an access token can. A sentinel key marks the list as
complete: if Redis restarted or was flushed the sentinel is gone, and verifiers stop
trusting the list until the issuing service has rebuilt it.

Every key of the list shares one hash tag, so in a Redis Cluster they live in one slot on
one node: the sentinel can only survive with the entries it vouches for (a node restarted
without persistence loses both), and each check or reload is one round trip to one node.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from servicekit.errors import ServiceUnavailable
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings
from servicekit.redis.change_feed import ChangeFeed
from servicekit.redis.client import REDIS_ERRORS, AnyRedis
from servicekit.redis.outage_memo import OutageMemo

if TYPE_CHECKING:
    from servicekit.redis.keys import KeySpace

#: Answers "is this session revoked?" from the source of truth when Redis cannot.
RevocationFallback = Callable[[uuid.UUID], Awaitable[bool]]

log = get_logger(__name__)
outage_log = ThrottledWarnings(log)
_COMPLETE = "!complete"


def denylist_prefix(keys: KeySpace) -> str:
    """The start of every key of a namespace's list, its hash tag included."""
    # v2: the hash tag (see the module docstring) renamed every key of v1.
    return keys.entity("denylist", version=2, hash_tag=True)


class RevocationUnavailable(ServiceUnavailable):
    """Revocation cannot be checked, so the token is not accepted (fail closed)."""

    code = "revocation_unavailable"
    message = "Token revocation cannot be checked right now; retry shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class SessionDenylist:
    """Revoked sessions: an in-process mirror for the hot path, Redis as the shared copy.

    ``is_revoked`` answers from the mirror — no network round trip — while the change feed
    is fresh and the list is complete; otherwise it asks Redis (one round trip), and when
    Redis cannot say, the fallback (the issuer's database) or it fails closed.
    ``revoke`` is written after commit: per-session keys with a TTL (read by the slow
    path), an index sorted by expiry (read to resynchronise mirrors) and a published
    change that reaches every instance's mirror at once, or within a poll interval if the
    message is lost.
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        keys: KeySpace,
        fallback: RevocationFallback | None = None,
        poll_interval_s: float = 0.25,
        max_staleness_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self._prefix = denylist_prefix(keys)
        self.fallback = fallback
        self.feed = ChangeFeed(
            redis,
            channel=f"{self._prefix}events",
            generation_key=f"{self._prefix}generation",
            poll_interval_s=poll_interval_s,
            max_staleness_s=max_staleness_s,
        )
        self.feed.on_message(self._apply)
        self.feed.on_resync(self._reload)
        self._mirror: dict[str, float] = {}
        #: Revoked here but not (yet) written to Redis: kept in the mirror across reloads,
        #: or a resync from a Redis that came back without them would forget them.
        self._unwritten: dict[str, float] = {}
        self._mirror_complete = False
        self._arrived_during_reload: list[str] | None = None
        #: Fallback answers while Redis cannot give them, shared for half a second: within
        #: the mirror's own staleness bound (max_staleness_s), and revocations made here
        #: drop theirs at once.
        self._outage: OutageMemo[uuid.UUID, bool] = OutageMemo()

    def key(self, session_id: uuid.UUID) -> str:
        """The key marking ``session_id`` revoked."""
        return f"{self._prefix}{session_id}"

    @property
    def sentinel_key(self) -> str:
        """Present while the list is complete."""
        return f"{self._prefix}complete"

    @property
    def index_key(self) -> str:
        """Sorted set of revoked session ids scored by expiry (epoch ms)."""
        return f"{self._prefix}index"

    async def start(self) -> None:
        """Start mirroring (subscribe and poll in the background)."""
        self.feed.start()

    async def stop(self) -> None:
        """Stop mirroring."""
        await self.feed.stop()

    def _apply(self, payload: str) -> None:
        if self._arrived_during_reload is not None:
            self._arrived_during_reload.append(payload)
        if payload == _COMPLETE:
            self._mirror_complete = True
            return
        for item in filter(None, payload.split(",")):
            session_id, _, expires = item.partition("@")
            self._mirror[session_id] = float(expires)

    async def _reload(self) -> None:
        now_ms = time.time() * 1000
        self._arrived_during_reload = []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(self.sentinel_key)
                pipe.zrangebyscore(self.index_key, now_ms, "+inf", withscores=True)
                complete, entries = await pipe.execute()
        finally:
            arrived, self._arrived_during_reload = self._arrived_during_reload, None
        self._mirror = {str(member): float(score) / 1000 for member, score in entries}
        self._mirror.update(self._unwritten)
        self._mirror_complete = bool(complete)
        # A revocation published while the index was being read may be missing from what
        # was read: apply such messages again on top of the fresh copy.
        for payload in arrived:
            self._apply(payload)

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        """Whether the session is revoked; falls back (or fails closed) when no copy can say."""
        sid = str(session_id)
        if self._unwritten and self._unwritten.get(sid, 0.0) > time.time():
            return True  # revoked here; Redis may be back with a list that lacks it
        if self.feed.fresh and self._mirror_complete:
            expires = self._mirror.get(sid)
            return expires is not None and expires > time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(self.sentinel_key)
                pipe.exists(self.key(session_id))
                complete, revoked = await pipe.execute()
        except REDIS_ERRORS as exc:
            return await self._degraded(session_id, "redis_error", exc)
        if not complete:
            return await self._degraded(session_id, "incomplete", None)
        return bool(revoked)

    async def _degraded(self, session_id: uuid.UUID, reason: str, exc: Exception | None) -> bool:
        outcome = "fallback" if self.fallback else "fail_closed"
        metrics.redis_errors().labels("denylist_check", outcome).inc()
        outage_log.warning(
            "auth.denylist_degraded", key=reason, reason=reason, outcome=outcome, error=repr(exc)
        )
        fallback = self.fallback
        if fallback is None:
            raise RevocationUnavailable
        return await self._outage.get(session_id, lambda: fallback(session_id))

    async def revoke(self, entries: Iterable[tuple[uuid.UUID, int]]) -> None:
        """Mark sessions revoked for ``ttl_s`` seconds each (``(session_id, ttl_s)`` pairs)."""
        now = time.time()
        entries = list(entries)
        self._outage.drop(sid for sid, _ in entries)  # an answer shared before this is stale
        live = [(str(sid), now + ttl_s) for sid, ttl_s in entries if ttl_s > 0]
        if not live:
            return
        self._unwritten = {sid: exp for sid, exp in self._unwritten.items() if exp > now}
        for session_id, expires in live:  # this instance knows at once
            self._mirror[session_id] = self._unwritten[session_id] = expires
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, expires in live:
                pipe.set(f"{self._prefix}{session_id}", "1", exat=math.ceil(expires))
            pipe.zadd(self.index_key, {sid: expires * 1000 for sid, expires in live})
            pipe.zremrangebyscore(self.index_key, "-inf", now * 1000)
            await pipe.execute()
        for session_id, _ in live:
            self._unwritten.pop(session_id, None)
        await self.feed.publish(",".join(f"{sid}@{expires:.3f}" for sid, expires in live))

    async def is_complete(self) -> bool:
        """Whether the sentinel is present."""
        return bool(await self.redis.exists(self.sentinel_key))

    async def mark_complete(self) -> None:
        """Set the sentinel after a full rebuild and tell every mirror."""
        await self.redis.set(self.sentinel_key, "1")
        await self.feed.publish(_COMPLETE)
