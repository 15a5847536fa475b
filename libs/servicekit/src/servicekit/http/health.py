"""Liveness and readiness.

``/health/live`` does no I/O: it answers as long as the event loop runs. ``/health/ready``
checks every dependency concurrently with a short timeout and answers 503 problem+json
naming the failing ones — or naming ``shutdown`` once SIGTERM has been received, so a
load balancer stops routing here while in-flight requests drain.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse, Response

from servicekit.db.engine import READ_ONLY
from servicekit.http.problem import problem_response
from servicekit.observability.logging import get_logger
from servicekit.redis.client import AnyRedis, ping
from servicekit.state import app_state

HealthCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 1.0

log = get_logger(__name__)


@dataclass
class Readiness:
    """Process readiness: the dependency checks and whether shutdown has begun."""

    checks: dict[str, HealthCheck] = field(default_factory=dict)
    shutting_down: bool = False
    _previous_handler: Any = None

    def install_signal_hook(self) -> None:
        """Flip to not-ready as soon as SIGTERM arrives, then let the server handle it."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        self._previous_handler = previous

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.shutting_down = True
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def remove_signal_hook(self) -> None:
        """Restore the handler that was installed before :meth:`install_signal_hook`."""
        if self._previous_handler is not None and (
            threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    async def run_checks(self, timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, str]:
        """Run every check concurrently; ``{name: "ok" | reason}``."""

        async def run(name: str, check: HealthCheck) -> tuple[str, str]:
            try:
                async with asyncio.timeout(timeout_s):
                    await check()
            except TimeoutError:
                return name, "timeout"
            except Exception as exc:
                return name, f"error: {type(exc).__name__}"
            return name, "ok"

        results = await asyncio.gather(*(run(n, c) for n, c in self.checks.items()))
        return dict(results)


def database_check(engine: AsyncEngine) -> HealthCheck:
    """``SELECT 1`` on a pooled connection."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execution_options(**READ_ONLY)
            await conn.execute(text("SELECT 1"))

    return check


def redis_check(client: AnyRedis) -> HealthCheck:
    """``PING`` the Redis server (every primary of a cluster)."""

    async def check() -> None:
        await ping(client)

    return check


def health_router() -> APIRouter:
    """``GET /health/live`` and ``GET /health/ready``."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", summary="Liveness: the process is up (no I/O)")
    async def live() -> Mapping[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="Readiness: dependencies answer and the process is not shutting down",
        responses={503: {"description": "Not ready; the body names the failing checks."}},
    )
    async def ready(request: Request) -> Response:
        readiness = app_state(request).readiness
        if readiness.shutting_down:
            return problem_response(
                status=503,
                code="not_ready",
                detail="Not ready: shutdown in progress.",
                instance=request.url.path,
                extra={"checks": {"shutdown": "in progress"}},
            )
        checks = await readiness.run_checks()
        failing = sorted(name for name, result in checks.items() if result != "ok")
        if failing:
            log.warning("health.not_ready", checks=checks)
            return problem_response(
                status=503,
                code="not_ready",
                detail=f"Not ready: {', '.join(failing)} unavailable.",
                instance=request.url.path,
                headers={"retry-after": "1"},
                extra={"checks": checks},
            )
        return JSONResponse({"status": "ok", "checks": checks})

    return router
