"""Bounded mixed load against a running service, with every response recorded.

Each worker loops over one kind of request (read, write, login, refresh, registration,
a revoked token) with a pause between requests until told to stop. Every outcome keeps its
timing, status, content type, problem code and, for writes, what was written, so a
scenario can assert on all of them and check PostgreSQL afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1"
ME = f"{API}/users/me"
LOGIN = f"{API}/auth/login"
REFRESH = f"{API}/auth/refresh"
LOGOUT = f"{API}/auth/logout"
REGISTER = f"{API}/users"
PASSWORD = "correct horse battery staple"
EMAIL_PREFIX = "verify-"
PROBLEM = "application/problem+json"
#: Authentication routes that fail closed (503 ``rate_limit_unavailable``) without Redis.
AUTH_ROUTES = frozenset({LOGIN, REFRESH, REGISTER})


@dataclass(frozen=True)
class Outcome:
    """One request and what came back (``status`` -1: no HTTP response at all)."""

    kind: str
    route: str
    started: float
    elapsed: float
    status: int
    content_type: str = ""
    error: str = ""
    retry_after: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    def describe(self) -> str:
        return f"{self.kind} {self.route} -> {self.status} {self.error} after {self.elapsed:.3f}s"


@dataclass
class Account:
    """A user the load acts as."""

    email: str
    user_id: str
    tokens: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


class Recorder:
    """Sends requests and keeps every outcome."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.outcomes: list[Outcome] = []

    async def send(
        self, kind: str, method: str, route: str, *, data: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await self.client.request(method, route, **kw)
        except httpx.HTTPError as exc:
            self.outcomes.append(
                Outcome(kind, route, started, time.monotonic() - started, -1,
                        error=type(exc).__name__, data=data if data is not None else {})
            )  # fmt: skip
            return None
        content_type = response.headers.get("content-type", "")
        error = response.json().get("error", "") if content_type == PROBLEM else ""
        self.outcomes.append(
            Outcome(kind, route, started, time.monotonic() - started, response.status_code,
                    content_type, error, response.headers.get("retry-after"),
                    data if data is not None else {})
        )  # fmt: skip
        return response

    def of(self, *kinds: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in kinds]

    def summary(self) -> str:
        counts = Counter((o.kind, o.status, o.error) for o in self.outcomes)
        return ", ".join(
            f"{k} {s}{' ' + e if e else ''}: {n}" for (k, s, e), n in sorted(counts.items())
        )


async def provision(client: httpx.AsyncClient, count: int) -> list[Account]:
    """Register and sign in ``count`` users."""
    accounts = []
    for _ in range(count):
        email = f"{EMAIL_PREFIX}{uuid.uuid4().hex[:12]}@example.com"
        created = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        tokens = await client.post(LOGIN, json={"email": email, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        accounts.append(Account(email, created.json()["id"], tokens.json()))
    return accounts


async def revoked_account(client: httpx.AsyncClient, account: Account) -> Account:
    """A second session of ``account``, signed out: its access token must stay rejected."""
    tokens = await client.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    revoked = Account(account.email, account.user_id, tokens.json())
    out = await client.post(LOGOUT, headers=revoked.auth)
    assert out.status_code == 204, out.text
    return revoked


# ---------------------------------------------------------------------- workers
async def reader(rec: Recorder, account: Account, stop: asyncio.Event, pause: float) -> None:
    while not stop.is_set():
        await rec.send("read", "GET", ME, headers=account.auth)
        await asyncio.sleep(pause)


async def writer(rec: Recorder, account: Account, stop: asyncio.Event, pause: float) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        value = f"w{n}-{uuid.uuid4().hex[:6]}"
        await rec.send("write", "PATCH", ME, headers=account.auth, json={"full_name": value},
                       data={"user_id": account.user_id, "value": value, "n": n})  # fmt: skip
        await asyncio.sleep(pause)


async def signer_in(rec: Recorder, account: Account, stop: asyncio.Event, pause: float) -> None:
    while not stop.is_set():
        data: dict[str, Any] = {}
        response = await rec.send("login", "POST", LOGIN, data=data,
                                  json={"email": account.email, "password": PASSWORD})  # fmt: skip
        if response is not None and response.status_code == 200:
            data["session_id"] = response.json()["session_id"]
        await asyncio.sleep(pause)


async def refresher(rec: Recorder, account: Account, stop: asyncio.Event, pause: float) -> None:
    token = account.tokens["refresh_token"]
    while not stop.is_set():
        response = await rec.send("refresh", "POST", REFRESH, json={"refresh_token": token})
        if response is not None and response.status_code == 200:
            token = response.json()["refresh_token"]
        await asyncio.sleep(pause)


async def registrar(rec: Recorder, stop: asyncio.Event, pause: float) -> None:
    while not stop.is_set():
        email = f"{EMAIL_PREFIX}{uuid.uuid4().hex[:12]}@example.com"
        await rec.send("register", "POST", REGISTER, json={"email": email, "password": PASSWORD},
                       data={"email": email})  # fmt: skip
        await asyncio.sleep(pause)


async def revoked_prober(
    rec: Recorder, account: Account, stop: asyncio.Event, pause: float
) -> None:
    while not stop.is_set():
        sid = account.tokens["session_id"]
        await rec.send("revoked", "GET", ME, headers=account.auth, data={"session_id": sid})
        await asyncio.sleep(pause)


@asynccontextmanager
async def running(*workers: Coroutine[Any, Any, None], stop: asyncio.Event) -> AsyncIterator[None]:
    """Run the workers while the block runs; stop them (bounded) when it ends."""
    tasks = [asyncio.create_task(w) for w in workers]
    try:
        yield
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        assert not pending, "a load worker did not stop within 30 s (a request hung)"
        for task in done:
            task.result()
