"""Assertions over recorded load: response shapes, and acknowledged writes in PostgreSQL."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.models import Session, User

from .load import PROBLEM, Outcome, Recorder


def assert_problem_503(outcome: Outcome, *codes: str) -> None:
    """A 503 problem+json with one of ``codes`` and a ``Retry-After``."""
    assert outcome.status == 503, outcome.describe()
    assert outcome.content_type == PROBLEM, outcome.describe()
    assert outcome.error in codes, outcome.describe()
    assert int(outcome.retry_after or 0) >= 1, outcome.describe()


def ok(outcome: Outcome) -> bool:
    return 200 <= outcome.status < 300


async def user_versions(engine: AsyncEngine, user_ids: Iterable[str]) -> dict[str, int]:
    """``version`` of each user now (each committed update adds one)."""
    ids = [uuid.UUID(u) for u in user_ids]
    async with engine.connect() as conn:
        rows = await conn.execute(select(User.id, User.version).where(User.id.in_(ids)))
        return {str(uid): version for uid, version in rows}


async def assert_acknowledged_writes_persisted(
    engine: AsyncEngine, rec: Recorder, base_versions: dict[str, int]
) -> int:
    """Every write answered 2xx is in PostgreSQL; returns how many were checked.

    Profile updates overwrite one row, so per user: the version grew by at least the number
    of acknowledged updates (and at most the number attempted: an update whose answer was
    lost may have committed), and the stored name is the last acknowledged value or one
    attempted after it. Sign-ins and registrations must have left their rows.
    """
    checked = 0
    by_user: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in rec.of("write"):
        by_user[outcome.data["user_id"]].append(outcome)
    async with engine.connect() as conn:
        ids = [uuid.UUID(u) for u in by_user]
        rows = {
            str(uid): (name, version)
            for uid, name, version in await conn.execute(
                select(User.id, User.full_name, User.version).where(User.id.in_(ids))
            )
        }
        for user_id, attempts in by_user.items():
            attempts.sort(key=lambda o: o.data["n"])
            acked = [i for i, o in enumerate(attempts) if ok(o)]
            name, version = rows[user_id]
            grew = version - base_versions[user_id]
            assert len(acked) <= grew <= len(attempts), (user_id, len(acked), grew, len(attempts))
            possible = {o.data["value"] for o in attempts[acked[-1] if acked else 0 :]}
            if not acked:
                possible.add("")  # the name the load's users are created with
            assert name in possible, f"{user_id}: stored {name!r}, not an acknowledged write"
            checked += len(acked)

        sessions = [uuid.UUID(o.data["session_id"]) for o in rec.of("login") if ok(o)]
        found = set(
            (await conn.execute(select(Session.id).where(Session.id.in_(sessions)))).scalars()
        )
        assert found == set(sessions), f"{len(set(sessions) - found)} acknowledged sign-ins lost"
        emails = [o.data["email"] for o in rec.of("register") if ok(o)]
        stored = set(
            (await conn.execute(select(User.email).where(User.email.in_(emails)))).scalars()
        )
        assert stored == set(emails), f"{len(set(emails) - stored)} acknowledged sign-ups lost"
    return checked + len(sessions) + len(emails)
