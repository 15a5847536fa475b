"""Session revocation: PostgreSQL first, then the Redis denylist after commit.

The :class:`DenylistMaintainer` keeps the Redis list complete: it rebuilds it from
PostgreSQL at start-up, when the list's sentinel disappears (Redis restarted or flushed)
and after a failed write, checking every 250 ms; the same loop retries cache
invalidations that failed while Redis was away.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from servicekit.db import AsyncSession, on_commit, read_only_session
from servicekit.db.orm import utcnow
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.redis import REDIS_ERRORS
from servicekit.runtime import BackgroundLoop
from user_service.repositories import (
    DisabledClientReader,
    RevokedSessionReader,
    SessionRepository,
)
from user_service.schemas.events import SessionRevoked, user_subject
from user_service.services.audit import AuditAction

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.auth import SessionDenylist
    from servicekit.events import EventRecorder
    from user_service.config import JwtSettings
    from user_service.services.audit import AuditTrail
    from user_service.services.user_cache import UserCache

log = get_logger(__name__)
CHECK_INTERVAL_S = 0.25
#: How often the maintainer runs its purges (expired rows are ignored until then anyway).
PURGE_INTERVAL_S = 3600.0
#: One purge: deletes what is past its time in the session's transaction; returns how many.
Purge = Callable[[AsyncSession], Awaitable[int]]


def denylist_ttl_s(jwt: JwtSettings) -> int:
    """How long a revoked session must stay listed: an access token's lifetime + leeway."""
    return jwt.access_ttl_s + 30


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRevoker:
    """Revokes sessions in the caller's transaction and lists them in Redis after commit."""

    denylist: SessionDenylist
    ttl_s: int
    #: Called when a denylist write fails: the maintainer then rebuilds the list.
    on_write_failed: Callable[[], None]
    events: EventRecorder
    audit: AuditTrail

    async def revoke(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        reason: str,
        session_ids: Sequence[uuid.UUID] | None = None,
        except_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke sessions in the transaction; list them in Redis once it commits."""
        revoked = await SessionRepository.from_session(session).revoke(
            user_id=user_id,
            reason=reason,
            now=utcnow(),
            session_ids=session_ids,
            except_id=except_id,
        )
        for session_id in revoked:
            await self.events(
                session,
                SessionRevoked(user_id=user_id, session_id=session_id, reason=reason),
                subject=f"{user_subject(user_id)}/session/{session_id}",
                partition_key=user_subject(user_id),
            )
        if revoked:
            await self.audit.record(
                session,
                AuditAction.SESSIONS_REVOKED,
                subject_id=user_id,
                reason=reason,
                sessions=[str(session_id) for session_id in revoked],
            )
            self.list_after_commit(session, revoked)
            log.info("auth.sessions_revoked", count=len(revoked), reason=reason)
        return revoked

    def list_after_commit(self, session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
        """Put ``ids`` (sessions, or a disabled client's tokens) on the denylist after commit."""
        on_commit(session, lambda: self._publish(ids))

    async def _publish(self, revoked: Sequence[uuid.UUID]) -> None:
        try:
            await self.denylist.revoke((sid, self.ttl_s) for sid in revoked)
        except REDIS_ERRORS:
            # PostgreSQL has it; verifiers fall back or fail closed until the rebuild.
            self.on_write_failed()
            metrics.redis_errors().labels("denylist_write", "deferred").inc()
            log.warning("auth.denylist_write_failed", sessions=len(revoked))


class DenylistMaintainer(BackgroundLoop):
    """Rebuilds the denylist whenever it may be incomplete.

    Hourly, it also runs its ``purges`` (expired idempotency keys and MFA challenges,
    audit rows past their retention), each in a transaction of its own.
    """

    def __init__(
        self,
        denylist: SessionDenylist,
        user_cache: UserCache,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        ttl_s: int,
        purges: Sequence[Purge] = (),
    ) -> None:
        super().__init__(name="denylist-maintainer", interval_s=CHECK_INTERVAL_S)
        self.denylist = denylist
        self.user_cache = user_cache
        self.sessionmaker = sessionmaker
        self.ttl_s = ttl_s
        self.purges = tuple(purges)
        #: Set when a write to the list failed: it may miss sessions until rebuilt.
        self.dirty = False
        self._next_purge = 0.0

    def mark_dirty(self) -> None:
        """Rebuild at the next check (a denylist write failed)."""
        self.dirty = True

    async def purge(self) -> int:
        """Run every purge, each in a transaction of its own; returns the rows deleted."""
        total = 0
        for purge in self.purges:
            async with self.sessionmaker() as session, session.begin():
                purged = await purge(session)
            total += purged
            if purged:
                log.info("maintainer.purged", purge=getattr(purge, "__qualname__", ""), rows=purged)
        return total

    async def rebuild(self) -> int:
        """List every session revoked within the TTL, then mark the list complete."""
        ttl = self.ttl_s
        now = utcnow()
        since = now - timedelta(seconds=ttl)
        async with read_only_session(self.sessionmaker) as session:
            rows = [
                *await RevokedSessionReader.from_session(session).revoked_since(since),
                *await DisabledClientReader.from_session(session).disabled_since(since),
            ]
        entries = [(sid, ttl - int((now - at).total_seconds())) for sid, at in rows]
        self.dirty = False
        await self.denylist.revoke(entries)
        await self.denylist.mark_complete()
        log.info("auth.denylist_rebuilt", sessions=len(entries))
        return len(entries)

    async def step(self) -> None:
        """Rebuild if the sentinel is missing or a write failed; retry failed cache invalidations.

        Both mean Redis was unreachable and may hold stale state.
        """
        if self.dirty or not await self.denylist.is_complete():
            await self.rebuild()
        await self.user_cache.repair()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL_S
            await self.purge()

    def on_error(self, exc: Exception) -> None:
        """An unreachable Redis may have lost writes: rebuild once it answers."""
        if isinstance(exc, (*REDIS_ERRORS, OSError)):
            self.dirty = True
            log.debug("auth.denylist_check_failed", error=repr(exc))
        else:
            log.warning("auth.denylist_maintainer_error", error=repr(exc))


def database_revocation_check(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Callable[[uuid.UUID], Awaitable[bool]]:
    """The denylist's fallback: ask PostgreSQL whether a session (or a client) is revoked."""

    async def is_revoked(session_id: uuid.UUID) -> bool:
        async with read_only_session(sessionmaker) as session:
            disabled = await DisabledClientReader.from_session(session).is_disabled(session_id)
            if disabled is not None:  # a service token: its `sid` is its client's
                return disabled
            return await RevokedSessionReader.from_session(session).is_revoked(session_id)

    return is_revoked
