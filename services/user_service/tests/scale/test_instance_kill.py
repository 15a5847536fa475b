"""``kill -9`` of one instance under write load: no acknowledged write lost, nginx serves on."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from user_service.models import User

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, register
from .replicas import Cluster, forwarded_client

pytestmark = pytest.mark.scale

CONCURRENCY = 8
LOAD_S = 3.0
KILL_AT_S = 1.0


@dataclass(frozen=True)
class Outcome:
    email: str
    status: int
    at: float  # seconds since the load began, when the answer arrived


async def register_until(
    proxy: httpx.AsyncClient, run: str, start: float, outcomes: list[Outcome]
) -> None:
    """Register new accounts one after another through the proxy until the load ends."""
    while time.monotonic() - start < LOAD_S:
        email = f"scale-{run}-{uuid.uuid4().hex[:12]}@example.com"
        response = await proxy.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        outcomes.append(Outcome(email, response.status_code, time.monotonic() - start))


async def test_kill_9_of_an_instance_loses_no_acknowledged_write(
    cluster: Cluster, db_engine: AsyncEngine
) -> None:
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=cluster.a, headers=forwarded_client()) as a:
        reader = await login(a, (await register(a))["email"])
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=cluster.proxy_url, limits=limits, timeout=30) as proxy:
        start = time.monotonic()
        async with asyncio.TaskGroup() as load:  # a client-side error fails the test
            for _ in range(CONCURRENCY):
                load.create_task(register_until(proxy, run, start, outcomes))
            await asyncio.sleep(KILL_AT_S)
            await asyncio.to_thread(cluster.victim.kill)  # SIGKILL to its whole process group
        # Reads through the proxy after the kill all succeed (moved to a live instance).
        reads = [(await proxy.get("/api/v1/users/me", headers=bearer(reader))) for _ in range(12)]
    assert cluster.victim.process.returncode == -9

    statuses = Counter(o.status for o in outcomes)
    errors = cluster.proxy_log("error.log")
    # A registration the killed instance was handling gets 502 from nginx (which never
    # retries a POST it has sent); every other answer is a success.
    assert set(statuses) <= {201, 502}, f"{statuses}\n{errors}"
    assert statuses[502] <= CONCURRENCY, f"{statuses}\n{errors}"
    proxied_502 = [
        line for line in cluster.proxy_log("access.log").splitlines() if '" 502 ' in line
    ]
    assert len(proxied_502) == statuses[502]
    assert all(f"upstream=127.0.0.1:{cluster.victim.port} " in line for line in proxied_502)
    acknowledged = {o.email for o in outcomes if o.status == 201}
    unanswered = {o.email for o in outcomes if o.status == 502}
    assert any(o.status == 201 and o.at > KILL_AT_S + 0.5 for o in outcomes), "no writes after"
    assert [r.status_code for r in reads] == [200] * len(reads)

    async with db_engine.connect() as conn:
        stored = set(
            (await conn.execute(select(User.email).where(User.email.like(f"scale-{run}-%"))))
            .scalars()
            .all()
        )
    assert acknowledged <= stored, f"acknowledged but lost: {sorted(acknowledged - stored)}"
    # Anything else stored was one of the interrupted requests (committed, then killed).
    assert stored - acknowledged <= unanswered
