"""``Idempotency-Key``: a retried request gets the stored response instead of a second effect.

A request with a key claims the row (scope, key) in its own transaction before doing its
work and fills in the response before that transaction commits, so the key is stored
exactly when the change is. A retry with the same key and body then finds the committed
row and gets its response replayed; the same key with another body is refused (422
``idempotency_key_mismatch``). Two requests racing with one key cannot both run: on
PostgreSQL the second insert waits on the unique index until the first transaction ends,
then replays its response (or runs, when the first rolled back); SQLite serialises writers.
Only successful responses are stored: a failed request rolls the claim back, so a retry
runs again. Keys expire after :data:`KEY_TTL`; an expired key is replaced on use, and the
maintainer purges the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from servicekit.db.orm import utcnow
from user_service.errors import IdempotencyKeyInUse, IdempotencyKeyMismatch
from user_service.repositories import IdempotencyKeyRepository

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.models import IdempotencyKey

KEY_TTL = timedelta(hours=24)
_PENDING = 0  # status of a claimed key whose response is not known yet


@dataclass(frozen=True)
class StoredResponse:
    """What a replay answers."""

    status_code: int
    headers: dict[str, str]
    body: str


class IdempotencyReplay(Exception):
    """Raised instead of running a request whose key already has a stored response."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


class IdempotencyService:
    """Claims keys, stores responses and purges expired keys; never commits."""

    async def claim(
        self, session: AsyncSession, *, scope: str, key: str, request_hash: str
    ) -> IdempotencyKey:
        """Claim ``key`` for this request, or raise why it cannot be claimed.

        The errors are :class:`IdempotencyReplay`, :class:`IdempotencyKeyMismatch` and
        :class:`IdempotencyKeyInUse`.
        """
        repo = IdempotencyKeyRepository.from_session(session)
        for _ in range(3):  # an expired or vanished key is replaced; bounded
            now = utcnow()
            record = await repo.claim(
                {"scope": scope, "key": key, "request_hash": request_hash,
                 "status_code": _PENDING, "headers": {}, "body": "", "created_at": now,
                 "expires_at": now + KEY_TTL}
            )  # fmt: skip
            if record is not None:
                return record
            existing = await repo.find(scope, key)
            if existing is None:
                continue
            if existing.expires_at <= now:
                await repo.discard_expired(now, scope=scope, key=key)
                continue
            if existing.request_hash != request_hash:
                raise IdempotencyKeyMismatch
            if existing.status_code == _PENDING:
                raise IdempotencyKeyInUse
            raise IdempotencyReplay(
                StoredResponse(existing.status_code, dict(existing.headers), existing.body)
            )
        raise IdempotencyKeyInUse

    async def store(
        self,
        session: AsyncSession,
        record: IdempotencyKey,
        *,
        status_code: int,
        headers: dict[str, Any],
        body: str,
    ) -> None:
        """Record the response of the request that claimed ``record`` (same transaction)."""
        record.status_code = status_code
        record.headers = headers
        record.body = body
        await IdempotencyKeyRepository.from_session(session).flush()

    async def purge_expired(self, session: AsyncSession) -> int:
        """Delete every expired key; returns how many."""
        return await IdempotencyKeyRepository.from_session(session).discard_expired(utcnow())


idempotency = IdempotencyService()
