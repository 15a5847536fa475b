"""PostgreSQL unreachable for 10 s under load, then reachable again.

The proxy drops every connection and refuses new ones; the service is never restarted.

Asserted: requests needing the database fail fast with 503 problem+json
``database_unavailable`` and ``Retry-After`` (never a 500, never a hang); reads of cached
users keep answering 200; ``/health/ready`` turns 503 within its 1 s check timeout and back
to 200 within 2 s of the database returning; then everything answers 2xx again (the pool
replaced its dead connections); every write acknowledged 2xx is in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing.tcp_proxy import TcpProxy

from .checks import assert_acknowledged_writes_persisted, assert_problem_503, ok, user_versions
from .harness import Measure, StartService
from .load import Recorder, provision, reader, refresher, registrar, running, signer_in, writer

pytestmark = [pytest.mark.verify, pytest.mark.usefixtures("verify_users")]

OUTAGE_S = 10.0
PAUSE_S = 0.05
#: The slowest acceptable 503: a refused connect is immediate; nothing may wait for the
#: pool (POOL_TIMEOUT_S, 5 s) or the connect timeout (CONNECT_TIMEOUT_S, 5 s).
FAIL_FAST_S = 1.0


async def _readiness(client: httpx.AsyncClient, stop: asyncio.Event) -> list[tuple[float, int]]:
    seen = []
    while not stop.is_set():
        seen.append((time.monotonic(), (await client.get("/health/ready")).status_code))
        await asyncio.sleep(0.05)
    return seen


async def test_postgresql_unreachable_10s_under_load(
    start_service: StartService, database_proxy: TcpProxy, db_engine: AsyncEngine, measure: Measure
) -> None:
    server = start_service()
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=15) as client,
        httpx.AsyncClient(base_url=server.base_url, timeout=15) as probe,
    ):
        readers = await provision(client, 2)
        writers = await provision(client, 2)
        others = await provision(client, 2)
        for account in readers:  # cached now: their reads need no database
            assert (await client.get("/api/v1/users/me", headers=account.auth)).status_code == 200
        base = await user_versions(db_engine, [a.user_id for a in writers])

        rec = Recorder(client)
        stop = asyncio.Event()
        workers = [
            *(reader(rec, a, stop, PAUSE_S) for a in readers),
            *(writer(rec, a, stop, PAUSE_S) for a in writers),
            signer_in(rec, others[0], stop, 0.2),
            refresher(rec, others[1], stop, 0.2),
            registrar(rec, stop, 0.5),
        ]
        readiness = asyncio.create_task(_readiness(probe, stop))
        async with running(*workers, stop=stop):
            await asyncio.sleep(3)
            database_proxy.cut()
            cut_at = time.monotonic()
            await asyncio.sleep(OUTAGE_S)
            database_proxy.restore()
            back_at = time.monotonic()
            await asyncio.sleep(5)
        ready = await asyncio.wait_for(readiness, 5)

    print(rec.summary())  # noqa: T201
    assert not [o.describe() for o in rec.outcomes if o.status < 0], "requests without answer"
    failed = [o for o in rec.outcomes if o.status >= 500]
    for o in failed:
        assert_problem_503(o, "database_unavailable")
        assert cut_at - 0.5 <= o.started <= back_at + 1.0, o.describe()
    assert failed, "the outage was felt"
    latencies = sorted(o.elapsed for o in failed)
    measure("pg_503_latency_median_s", statistics.median(latencies))
    measure("pg_503_latency_max_s", latencies[-1])
    assert latencies[-1] < FAIL_FAST_S, f"a 503 took {latencies[-1]:.2f} s"
    assert {o.status for o in rec.of("read")} == {200}, "cached users are served without it"
    after = [o for o in rec.outcomes if o.started > back_at + 1.0]
    assert after, "load ran after the database returned"
    assert all(ok(o) for o in after), [o.describe() for o in after if not ok(o)][:5]

    down = [t for t, status in ready if status == 503 and cut_at < t < back_at]
    assert down, "readiness reported the outage"
    measure("pg_ready_503_after_s", down[0] - cut_at)
    assert down[0] - cut_at < 2.0
    up = [t for t, status in ready if status == 200 and t > back_at]
    assert up, "readiness came back"
    measure("pg_ready_200_after_s", up[0] - back_at)
    assert up[0] - back_at < 2.0
    assert all(status == 200 for t, status in ready if t > up[0]), "readiness flapped"
    assert await assert_acknowledged_writes_persisted(db_engine, rec, base) > 100
