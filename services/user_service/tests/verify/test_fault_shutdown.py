"""SIGTERM while requests are in flight and load keeps coming.

The in-flight requests are profile updates waiting on row locks the test holds, so they are
provably running when the signal arrives. What a readiness probe sees: the app flips to
not-ready in the signal handler, but uvicorn acts on the signal only at its main loop's next
tick (every 0.1 s): it then closes the listening socket and every idle keep-alive
connection. So a probe that reaches the app after the signal (here one over an open
keep-alive connection, sent just after a tick so that it arrives before the next) gets 503
problem+json ``not_ready`` with ``checks: {"shutdown": "in progress"}``; from the tick on,
probes get no HTTP answer at all (new connections refused, the keep-alive one closed).
Asserted as well: no probe answers 200 after the signal; the in-flight requests complete
with 2xx once the locks go, within the drain timeout; the process exits 0; every write
answered 2xx is in PostgreSQL. Past the drain timeout the
requests still running are cancelled: they get 503 ``request_cancelled`` problem+json (or
the connection closes) and leave nothing committed, and the exit waits for their statements
to end (SQLAlchemy closes the cancelled asyncpg connection gracefully), so for at most the
statement timeout.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from .checks import assert_acknowledged_writes_persisted, ok, user_versions
from .db_faults import rows_locked, wait_for_lock_waiters
from .harness import Measure, StartService
from .load import Account, Recorder, provision, reader, running, writer

pytestmark = [pytest.mark.verify, pytest.mark.usefixtures("verify_users")]

HELD = 4
STATEMENT_TIMEOUT_S = 10  # the default USER_SERVICE_DATABASE__STATEMENT_TIMEOUT_MS
TICK_S = 0.1  # uvicorn's main loop looks at the signal flag once per tick
PROBLEM = "application/problem+json"


async def _a_tick(probe: httpx.AsyncClient) -> float:
    """When uvicorn's main loop ticked (monotonic time, within a poll's round trip).

    The loop renews the ``Date`` header on every tenth tick, so poll over one keep-alive
    connection until the header changes.
    """
    first = (await probe.get("/health/live")).headers["date"]
    deadline = time.monotonic() + 3
    previous = time.monotonic()
    while time.monotonic() < deadline:
        sent = time.monotonic()
        if (await probe.get("/health/live")).headers["date"] != first:
            return (previous + sent) / 2  # between the last old Date and the first new one
        previous = sent
    raise AssertionError("the Date header did not change within 3 s")


async def _between_ticks(probe: httpx.AsyncClient) -> None:
    """Return 30 ms after one of uvicorn's ticks, so that the next is about 70 ms away."""
    tick = await _a_tick(probe)
    at = tick + 0.03
    while at < time.monotonic() + 0.005:  # bounded: a tick every 0.1 s
        at += TICK_S
    await asyncio.sleep(at - time.monotonic())


async def _probe_readiness(base_url: str, until: float) -> list[tuple[float, int | str]]:
    """A new connection per probe: (time, status or the connection error)."""
    seen: list[tuple[float, int | str]] = []
    while time.monotonic() < until:
        sent = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=2) as fresh:
                seen.append((sent, (await fresh.get("/health/ready")).status_code))
        except httpx.HTTPError as exc:
            seen.append((sent, type(exc).__name__))
        await asyncio.sleep(0.01)
    return seen


async def _in_flight(rec: Recorder, held: list[Account]) -> list[asyncio.Task[object]]:
    return [
        asyncio.create_task(
            rec.send(
                "write",
                "PATCH",
                "/api/v1/users/me",
                headers=a.auth,
                json={"full_name": "in flight at SIGTERM"},
                data={"user_id": a.user_id, "value": "in flight at SIGTERM", "n": 10**6},
            )
        )
        for a in held
    ]


@pytest.mark.parametrize(
    ("graceful_s", "held_s"),
    [pytest.param(5, 1.5, id="drained"), pytest.param(2, 5.0, id="drain-timeout-exceeded")],
)
async def test_sigterm_under_load(
    start_service: StartService, db_engine: AsyncEngine, measure: Measure,
    graceful_s: int, held_s: float,
) -> None:  # fmt: skip
    server = start_service(USER_SERVICE_SERVER__GRACEFUL_TIMEOUT_S=str(graceful_s))
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
        httpx.AsyncClient(base_url=server.base_url, timeout=2, limits=one_connection) as probe,
    ):
        held = await provision(client, HELD)
        loaders = await provision(client, 2)
        base = await user_versions(db_engine, [a.user_id for a in (*held, *loaders)])
        rec = Recorder(client)
        stop = asyncio.Event()
        async with running(reader(rec, loaders[0], stop, 0.02), writer(rec, loaders[1], stop, 0.02),
                           stop=stop):  # fmt: skip
            async with rows_locked(db_engine, [a.user_id for a in held]):
                requests = await _in_flight(rec, held)
                await wait_for_lock_waiters(db_engine, HELD)
                assert (await probe.get("/health/ready")).status_code == 200
                await _between_ticks(probe)
                server.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                draining = await probe.get("/health/ready")  # the open keep-alive connection
                measure("shutdown_ready_503_after_s", time.monotonic() - signalled)
                ready = await _probe_readiness(server.base_url, signalled + min(held_s, 1.0))
                with pytest.raises(httpx.TransportError):  # the server closed it at its tick
                    await probe.get("/health/ready")
                assert not any(r.done() for r in requests), "still held, still in flight"
                await asyncio.sleep(held_s - (time.monotonic() - signalled))
            code = await asyncio.to_thread(server.wait, graceful_s + 15)
            exited = time.monotonic()
            await asyncio.wait(requests, timeout=10)

    print(rec.summary(), ready[:3], ready[-3:])  # noqa: T201
    drain = exited - signalled
    measure(f"shutdown_exit_after_s[graceful={graceful_s},held={held_s}]", drain)
    assert code == 0, server.output()[-2000:]
    # Drained in time: the exit follows the last response. Cancelled: their statements end
    # first (here when the locks go, at the latest at the statement timeout).
    bound = graceful_s if held_s < graceful_s else graceful_s + STATEMENT_TIMEOUT_S
    assert drain < bound + 3, f"exited {drain:.2f} s after SIGTERM"
    # Sent after the signal while the held requests were in flight: not ready, at once.
    assert draining.status_code == 503, draining.text
    assert draining.headers["content-type"] == PROBLEM
    assert draining.json()["error"] == "not_ready"
    assert draining.json()["checks"] == {"shutdown": "in progress"}
    # Fresh connections: 503 if they reached the app before the tick, never 200.
    assert {s for _, s in ready if isinstance(s, int)} <= {503}, "ready after SIGTERM"
    refused = [s for t, s in ready if t > signalled + 0.3]
    assert refused, "probed after the signal"
    assert set(refused) == {"ConnectError"}, "a new connection was accepted while draining"
    in_flight = [o for o in rec.of("write") if o.data["n"] == 10**6]
    load = [o for o in rec.outcomes if o not in in_flight]
    assert not [o.describe() for o in load if o.status >= 500]
    # A request written to an idle keep-alive connection as the server closes it is lost in
    # transit (clients retry those); anything sent earlier than that must have been answered.
    assert not [o.describe() for o in load if o.status < 0 and o.started < signalled - 0.2]
    assert len(in_flight) == HELD
    if held_s < graceful_s:  # released within the drain timeout: every one completes
        assert [o.status for o in in_flight] == [200] * HELD
    else:  # cancelled at the drain timeout: no answer, nothing committed
        assert not [o for o in in_flight if ok(o)]
        answered = [o for o in in_flight if o.status != -1]
        assert all(o.status == 503 and o.error == "request_cancelled" for o in answered), [
            o.describe() for o in in_flight
        ]
        after = await user_versions(db_engine, [a.user_id for a in held])
        assert after == {a.user_id: base[a.user_id] for a in held}
    await assert_acknowledged_writes_persisted(db_engine, rec, base)
