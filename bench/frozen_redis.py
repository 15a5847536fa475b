"""``make bench-frozen-redis``: ``GET /users/me`` while the service's Redis is frozen.

Issue 17's outage goal. One worker on a fresh PostgreSQL database and a Redis of its own
(never the shared ones), production settings as ``make bench`` uses. ``GET /users/me``
runs for 5 s before the freeze; then the Redis process is stopped (``SIGSTOP``: it accepts
nothing and answers nothing) for ``FREEZE_S`` seconds while the load goes on, at
``BENCH_FROZEN_C`` connections throughout. The first second of the freeze (the circuit
learning of the outage) is one wrk run, seconds 1 to ``FREEZE_S`` another, measured: p99
goal < 250 ms, every answer 200. Profile edits (``PATCH /users/me``) are sent through the
freeze and read back afterwards: none answered 200 may be lost.

The p99 is reported twice: wrk's, and the server's own (``admitted_p99_ms``, from its
``http_request_duration_seconds`` histogram over the measured seconds). Knobs:
``BENCH_FROZEN_C`` (connections, 64) and ``BENCH_FROZEN_ENV`` (JSON of extra service
settings, e.g. ``{"USER_SERVICE_REDIS__BREAKER_COOLDOWN_S": "5"}``).

Writes ``results/frozen-redis-latest.json`` and prints ``frozen_p99_ms=… frozen_ok_rps=…``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from harness.backends import Database, Redis
from harness.common import PASSWORD, POSTGRES_URL, RESULTS, USER_SERVICE, WORK, ensure_wrk, log, out
from harness.load import (
    Wrk,
    build_scripts,
    counter_diff,
    histogram_quantile,
    latency_buckets,
    summarize,
    write_list,
)
from harness.seed import login, seed_users
from harness.servers import Server
from run import baseline_environment, export_environment, service_environment
from servicekit.testing.process import free_port

ME = "/api/v1/users/me"
FREEZE_S = 20
USERS = 64
GOAL_P99_MS = 250.0
CONC = int(os.environ.get("BENCH_FROZEN_C", "64"))


def main() -> int:
    """Freeze Redis under load; measure, check the writes, print and save the result."""
    wrk = Wrk(ensure_wrk(), build_scripts())
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    db, redis = Database(POSTGRES_URL, name=f"frozen_{os.getpid()}"), Redis()
    with contextlib.ExitStack() as cleanup:
        db.create()
        cleanup.callback(db.drop)
        redis.start()
        cleanup.callback(redis.stop)
        cleanup.callback(_thaw, redis)  # whatever happens, never leave it stopped
        server, emails = _service(db, redis, cleanup)
        result = _measure(wrk, server, redis, emails)
    result["pass"] = bool(
        result["frozen"]["p99_ms"] < GOAL_P99_MS
        and result["frozen"]["errors"] == 0
        and not result["writes"]["lost"]
    )
    (RESULTS / "frozen-redis-latest.json").write_text(json.dumps(result, indent=2) + "\n")
    out(json.dumps(result, indent=2))
    frozen = result["frozen"]
    out(
        f"frozen_p99_ms={frozen['p99_ms']} frozen_admitted_p99_ms={frozen['admitted_p99_ms']} "
        f"frozen_ok_rps={frozen['ok_rps']}"
    )
    return 0


def _service(db: Database, redis: Redis, cleanup: contextlib.ExitStack) -> tuple[Server, list[str]]:
    """Migrate, seed USERS users, start one worker of the service; it and the emails."""
    key_file = WORK / "frozen-jwt.pem"
    subprocess.run([USER_SERVICE, "keys", "generate", "--out", str(key_file)], check=True)
    cleanup.callback(key_file.unlink, missing_ok=True)
    env = service_environment(baseline_environment(), db.url, redis.url, key_file)
    export_environment(env)
    subprocess.run([USER_SERVICE, "migrate"], env=env, cwd=WORK, check=True, capture_output=True)
    _, emails, _ = asyncio.run(seed_users(USERS))
    env = {**env, "PORT": str(free_port()), **json.loads(os.environ.get("BENCH_FROZEN_ENV", "{}"))}
    server = Server(
        "user_service-frozen", [USER_SERVICE, "serve"], env, ready="/health/ready", kind="service"
    )
    server.start()
    cleanup.callback(server.stop)
    return server, emails


def _measure(wrk: Wrk, server: Server, redis: Redis, emails: list[str]) -> dict[str, Any]:
    """Load before the freeze, its first second, the rest of it (measured), then the writes."""
    with httpx.Client() as client:
        tokens = [login(client, server.url, e, PASSWORD) for e in emails]
    args = [str(write_list("frozen-me", [("GET", ME, t, "") for t in tokens]))]

    def load(label: str, seconds: int) -> dict[str, Any]:
        return summarize(
            wrk.run(label, server.url, "list", args, CONC, seconds), c=CONC, workers=1, status=None
        )

    before = load("frozen-before", 5)
    writer = _Writer(server.url, tokens[:4])
    writer.start()
    os.kill(_pid(redis), signal.SIGSTOP)
    frozen_at = time.monotonic()
    first_second = load("frozen-first-second", 1)
    counted = server.status_counts("frozen-before")
    frozen = load("frozen", FREEZE_S - 1)
    frozen["status_counts"] = dict(
        counter_diff(server.status_counts("frozen-after"), counted) or {}
    )
    frozen["admitted_p99_ms"] = histogram_quantile(
        0.99, latency_buckets("frozen-after", ME), latency_buckets("frozen-before", ME)
    )
    writer.stop()
    _thaw(redis)
    thawed_s = round(time.monotonic() - frozen_at, 1)
    time.sleep(2)  # the circuit closes; caches refill
    return {
        "before": before,
        "first_second": first_second,
        "frozen": frozen,
        "frozen_for_s": thawed_s,
        "writes": writer.check(),
        "goal_p99_ms": GOAL_P99_MS,
    }


class _Writer(threading.Thread):
    """``PATCH /users/me`` with a fresh name, one user after another, through the freeze."""

    def __init__(self, base_url: str, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        self.base_url, self.tokens = base_url, tokens
        self.acknowledged: dict[str, str] = {}  # token -> the last name answered 200
        self.statuses: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            n = 0
            while not self._done.is_set():
                token = self.tokens[n % len(self.tokens)]
                name = f"frozen {n} {secrets.token_hex(3)}"
                response = client.patch(
                    ME, json={"full_name": name}, headers={"Authorization": f"Bearer {token}"}
                )
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    self.acknowledged[token] = name
                n += 1
                self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=15)

    def check(self) -> dict[str, Any]:
        """Each user's last acknowledged name, read back once Redis answers again."""
        lost = []
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            for token, name in self.acknowledged.items():
                read = client.get(ME, headers={"Authorization": f"Bearer {token}"})
                if read.json().get("full_name") != name:
                    lost.append(name)
        return {"statuses": self.statuses, "acknowledged": len(self.acknowledged), "lost": lost}


def _pid(redis: Redis) -> int:
    assert redis.process is not None  # noqa: S101 - started above
    return redis.process.pid


def _thaw(redis: Redis) -> None:
    if redis.process is not None and redis.process.poll() is None:
        os.kill(redis.process.pid, signal.SIGCONT)


if __name__ == "__main__":
    log(f"frozen Redis: one worker, GET /users/me at c={CONC}")
    sys.exit(main())
