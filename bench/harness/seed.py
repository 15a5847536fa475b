"""Seeded users and sign-ins."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

from harness.common import HASH_SAMPLES, PASSWORD

if TYPE_CHECKING:
    import httpx

# ------------------------------------------------------------------------------- seeding


async def seed_users(count: int) -> tuple[list[str], list[str], dict[str, Any]]:
    """Insert ``count`` verified users sharing one precomputed argon2id hash of PASSWORD.

    Hashing each would cost ~40 ms of CPU apiece. The users go in through SQLAlchemy with the
    service's models; then single verifications are timed with the service's own
    PasswordHasher.
    """
    from sqlalchemy import insert

    from servicekit.db import create_engine, create_sessionmaker
    from user_service.config import UserServiceSettings
    from user_service.models import Role, User
    from user_service.security import PasswordHasher

    settings = UserServiceSettings(_env_file=None)
    hasher = PasswordHasher(settings.password)
    engine = create_engine(settings)
    try:
        password_hash = await hasher.hash(PASSWORD)
        ids = [uuid.uuid4() for _ in range(count)]
        emails = [f"bench-{i:05d}@example.com" for i in range(count)]
        rows = [
            {
                "id": user_id,
                "email": email,
                "password_hash": password_hash,
                "full_name": f"Bench User {i}",
                "is_verified": True,
                "role": Role.USER,
            }
            for i, (user_id, email) in enumerate(zip(ids, emails, strict=True))
        ]
        async with create_sessionmaker(engine)() as session, session.begin():
            for start in range(0, count, 1000):
                await session.execute(insert(User), rows[start : start + 1000])
        # The login path's cost: one argon2id verification at the service's parameters.
        for _ in range(2):
            await hasher.verify(PASSWORD, password_hash)
        # CPU time, not wall time: the hashing threads are niced, so on a machine still busy
        # with the bulk insert above (PostgreSQL's WAL writer, autovacuum) the wall time of
        # one verification measured anywhere from 16 to 19 ms between runs; its CPU time is
        # what bounds logins per core. This process does nothing else meanwhile.
        samples, walls = [], []
        for _ in range(HASH_SAMPLES):
            began, began_cpu = time.perf_counter(), time.process_time()
            valid, _new = await hasher.verify(PASSWORD, password_hash)
            samples.append(time.process_time() - began_cpu)
            walls.append(time.perf_counter() - began)
            if not valid:
                raise RuntimeError("the seeded hash does not verify")
        pw = settings.password
        hashing = {
            "single_hash_ms": round(statistics.median(samples) * 1000, 2),
            "single_hash_wall_ms": round(statistics.median(walls) * 1000, 2),
            "samples": HASH_SAMPLES,
            "argon2id": {
                "memory_kib": pw.argon2_memory_kib,
                "time_cost": pw.argon2_time_cost,
                "parallelism": pw.argon2_parallelism,
            },
            "hash_workers": pw.hash_workers,
        }
    finally:
        hasher.close()
        await engine.dispose()
    return [str(i) for i in ids], emails, hashing


#: Audit events seeded for the audit-query step, over AUDIT_SUBJECTS accounts.
AUDIT_EVENTS = 100_000
AUDIT_SUBJECTS = 100
_AUDIT_ACTIONS = ("auth.login", "auth.login", "auth.login", "session.revoked", "mfa.enabled")


async def seed_audit_events(user_ids: list[str]) -> list[str]:
    """Insert AUDIT_EVENTS audit rows, spread over 30 days; returns the accounts they are about.

    AUDIT_SUBJECTS accounts get 1,000 events each, so a page of one account's newest events
    is picked out of a table of 100,000 rows, as an administrator's query would be.
    """
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from servicekit.db import create_engine, create_sessionmaker
    from user_service.config import UserServiceSettings
    from user_service.models import AuditEvent

    subjects = user_ids[:AUDIT_SUBJECTS]
    now = datetime.now(UTC)
    step = timedelta(days=30) / AUDIT_EVENTS
    rows = [
        {
            "id": uuid.uuid4(),
            "occurred_at": now - step * n,
            "actor_id": uuid.UUID(subjects[n % len(subjects)]),
            "actor_client_id": "first-party",
            "subject_id": uuid.UUID(subjects[n % len(subjects)]),
            "action": _AUDIT_ACTIONS[n % len(_AUDIT_ACTIONS)],
            "outcome": "success" if n % 7 else "failure",
            "ip": "198.51.100.7",
            "user_agent": "bench/1.0",
            "request_id": uuid.uuid4().hex,
            "details": {"amr": ["pwd"]},
        }
        for n in range(AUDIT_EVENTS)
    ]
    engine = create_engine(UserServiceSettings(_env_file=None))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for start in range(0, len(rows), 5000):
                await session.execute(insert(AuditEvent), rows[start : start + 5000])
    finally:
        await engine.dispose()
    return subjects


def login(client: httpx.Client, base_url: str, email: str, password: str) -> str:
    """Sign in through the API and return the access token."""
    response = client.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token
