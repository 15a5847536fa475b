"""Processes without HTTP: background loops run until SIGTERM or SIGINT.

``<service> relay`` and ``<service> worker`` are such processes: they build their loops from
the service's database and Redis, start them, and on a signal stop them (each finishing or
abandoning its step in flight, see :class:`~servicekit.runtime.loop.BackgroundLoop`) before
closing the connections.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from servicekit.db.engine import create_engine
from servicekit.db.session import create_sessionmaker
from servicekit.observability import tracing
from servicekit.observability.exporter import MetricsExporter
from servicekit.observability.logging import get_logger
from servicekit.redis.client import create_redis

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.redis.client import AnyRedis
    from servicekit.settings import ServiceSettings

log = get_logger(__name__)


class Runnable(Protocol):
    """Something started in the background and stopped at shutdown."""

    def start(self) -> None:
        """Run in the background."""

    async def stop(self) -> None:
        """Stop, letting work in flight finish briefly."""


@dataclass(frozen=True, slots=True)
class WorkerBackends:
    """What a worker process's loops are built from."""

    settings: ServiceSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: AnyRedis
    #: The OpenTelemetry tracer provider when ``tracing.enabled`` (else ``None``).
    tracer_provider: Any = None


async def run_worker(
    settings: ServiceSettings, build: Callable[[WorkerBackends], Sequence[Runnable]], *, name: str
) -> None:
    """Run the loops ``build`` returns until SIGTERM or SIGINT."""
    if not settings.redis.url:
        raise SystemExit(f"{name}: REDIS_URL is not set (the embedded Redis lives in `serve`)")
    engine = create_engine(settings)
    redis = create_redis(settings, settings.redis.url)
    provider = tracing.create_tracer_provider(settings) if settings.tracing.enabled else None
    if provider is not None:
        tracing.instrument_backends(engine, provider)
    loops: list[Runnable] = list(
        build(WorkerBackends(settings, create_sessionmaker(engine), redis, provider))
    )
    if settings.server.metrics_port is not None:  # scraped like a serving process
        token = settings.http.resolved_metrics_token()
        loops.append(
            MetricsExporter(settings.server.host, settings.server.metrics_port, token=token)
        )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    for runnable in loops:
        runnable.start()
    log.info(f"{name}.started")
    try:
        await stopping.wait()
    finally:
        await asyncio.gather(*(runnable.stop() for runnable in loops))
        await redis.aclose()
        await engine.dispose()
        if provider is not None:
            tracing.shutdown(provider)
        log.info(f"{name}.stopped")
