"""Start-up hook wiring a service's outbox: the recorder its services take and the relay."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from servicekit.db.engine import create_engine
from servicekit.db.session import create_sessionmaker
from servicekit.events.outbox import EventRecorder, install_relay_wake
from servicekit.events.relay import OutboxRelay
from servicekit.events.sealing import Sealer
from servicekit.events.streams import StreamPublisher
from servicekit.observability.logging import get_logger
from servicekit.redis.client import create_redis
from servicekit.redis.keys import KeySpace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.events.outbox import OutboxTables
    from servicekit.redis.client import AnyRedis
    from servicekit.settings import ServiceSettings
    from servicekit.state import AppState

log = get_logger(__name__)


def outbox_relay(
    settings: ServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    tables: OutboxTables,
) -> OutboxRelay:
    """The relay of a service's ``tables`` to its streams (not started)."""
    keys = KeySpace.of(settings)
    publisher = StreamPublisher(redis, keys, maxlen=settings.events.stream_maxlen)
    return OutboxRelay(sessionmaker, tables, publisher, settings.events, name=settings.service_name)


async def run_relay(settings: ServiceSettings, tables: OutboxTables) -> None:
    """Relay until SIGTERM or SIGINT: the ``<service> relay`` process of a deployment.

    Run it with ``events.relay_in_process`` off in the serving processes, or beside them:
    relays share the work safely either way.
    """
    if not settings.redis.url:
        raise SystemExit("relay: REDIS_URL is not set (the embedded Redis lives in `serve`)")
    engine = create_engine(settings)
    redis = create_redis(settings, settings.redis.url)
    relay = outbox_relay(settings, create_sessionmaker(engine), redis, tables)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    relay.start()
    log.info("events.relay_started", partitions=settings.events.partitions)
    try:
        await stopping.wait()
    finally:
        await relay.stop()
        await redis.aclose()
        await engine.dispose()
        log.info("events.relay_stopped")


def events_startup(
    tables: OutboxTables,
) -> Callable[[AppState], Awaitable[Callable[[], Awaitable[None]]]]:
    """A startup hook: provide an :class:`EventRecorder`, a :class:`Sealer` and the relay.

    It is a ``create_app(on_startup=[...])`` hook; the relay runs in this process unless
    ``events.relay_in_process`` is off.

    Put it before the hooks whose services record events: they find the recorder with
    ``state.get(EventRecorder)``.
    """

    async def hook(state: AppState) -> Callable[[], Awaitable[None]]:
        settings = state.settings
        relay = outbox_relay(settings, state.sessionmaker, state.redis, tables)
        state.provide(EventRecorder.of(settings, tables))
        state.provide(Sealer(settings.events.seal_keys))
        state.provide(relay)
        state.session_hooks.append(install_relay_wake(relay.wake))
        if settings.events.relay_in_process:
            relay.start()
        return relay.stop

    return hook
