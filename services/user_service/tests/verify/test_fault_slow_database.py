"""A slow database: for 4 s every statement on ``users`` waits on a lock the test holds.

The statement timeout is set to 1 s.

Asserted: requests that need the table answer 503 problem+json ``database_timeout`` with
``Retry-After`` at the statement timeout (not before it, and not much after); reads of
cached users keep answering 200; once the lock goes every request answers 2xx again
without a restart (the pool recovered); every write answered 2xx is in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from .checks import assert_acknowledged_writes_persisted, assert_problem_503, ok, user_versions
from .db_faults import table_locked
from .harness import Measure, StartService
from .load import Recorder, provision, reader, running, signer_in, writer

pytestmark = [pytest.mark.verify, pytest.mark.usefixtures("verify_users")]

STATEMENT_TIMEOUT_S = 1.0
SLOW_S = 4.0


async def test_statement_timeout_under_load(
    start_service: StartService, db_engine: AsyncEngine, measure: Measure
) -> None:
    server = start_service(
        USER_SERVICE_DATABASE__STATEMENT_TIMEOUT_MS=str(int(STATEMENT_TIMEOUT_S * 1000))
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as client:
        readers = await provision(client, 2)
        writers = await provision(client, 3)
        signers = await provision(client, 1)
        for account in readers:
            assert (await client.get("/api/v1/users/me", headers=account.auth)).status_code == 200
        base = await user_versions(db_engine, [a.user_id for a in writers])
        rec = Recorder(client)
        stop = asyncio.Event()
        workers = [
            *(reader(rec, a, stop, 0.05) for a in readers),
            *(writer(rec, a, stop, 0.05) for a in writers),
            signer_in(rec, signers[0], stop, 0.2),
        ]
        async with running(*workers, stop=stop):
            await asyncio.sleep(2)
            async with table_locked(db_engine):
                slow_at = time.monotonic()
                await asyncio.sleep(SLOW_S)
            fast_at = time.monotonic()
            await asyncio.sleep(3)
        ready = await client.get("/health/ready")

    print(rec.summary())  # noqa: T201
    assert not [o.describe() for o in rec.outcomes if o.status < 0], "requests without answer"
    failed = [o for o in rec.outcomes if o.status >= 500]
    assert failed, "the slowness was felt"
    for o in failed:
        assert_problem_503(o, "database_timeout")
        assert slow_at - 0.2 <= o.started <= fast_at, o.describe()
        assert STATEMENT_TIMEOUT_S * 0.9 <= o.elapsed <= STATEMENT_TIMEOUT_S + 1.5, o.describe()
    elapsed = [o.elapsed for o in failed]
    measure("slow_db_timeout_answer_median_s", statistics.median(elapsed))
    measure("slow_db_timeout_answer_max_s", max(elapsed))
    assert {o.status for o in rec.of("read")} == {200}, "cached users are served without it"
    after = [o for o in rec.outcomes if o.started > fast_at + 0.5]
    assert after, "load ran after the slowness"
    assert all(ok(o) for o in after), [o.describe() for o in after if not ok(o)][:5]
    assert ready.status_code == 200
    assert await assert_acknowledged_writes_persisted(db_engine, rec, base) > 50
