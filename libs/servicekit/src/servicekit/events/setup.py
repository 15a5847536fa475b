"""Wiring of a service's events: its outbox, recorder and relay; its consumer group."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.events.consumer import EventConsumerGroup
from servicekit.events.outbox import EventRecorder, install_relay_wake
from servicekit.events.relay import OutboxRelay
from servicekit.events.sealing import Sealer
from servicekit.events.streams import StreamPublisher
from servicekit.redis.keys import KeySpace
from servicekit.runtime.worker import WorkerBackends, run_worker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.db.session import AsyncSession
    from servicekit.events.consumer import Handler, InboxTables
    from servicekit.events.envelope import EventCatalog
    from servicekit.events.outbox import OutboxTables
    from servicekit.redis.client import AnyRedis
    from servicekit.settings import ConsumerSettings, ServiceSettings
    from servicekit.state import AppState


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a service consumes: a producer's events, its handlers and the inbox they share."""

    #: The producing service (its key space on the shared Redis, ``user_service``).
    producer: str
    catalog: EventCatalog
    handlers: Mapping[str, Handler]
    inbox: InboxTables


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

    def build(backends: WorkerBackends) -> list[OutboxRelay]:
        return [outbox_relay(settings, backends.sessionmaker, backends.redis, tables)]

    await run_worker(settings, build, name="events.relay")


def consumer_group(
    settings: ServiceSettings,
    consumer: ConsumerSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    subscription: Subscription,
) -> EventConsumerGroup:
    """The service's consumer group on the producer's streams (not started).

    The group is named after the consuming service; each process is one consumer of it.
    """
    return EventConsumerGroup(
        redis,
        sessionmaker,
        subscription.inbox,
        source=KeySpace.of(settings, subscription.producer),
        partitions=consumer.partitions,
        group=settings.service_name,
        consumer=f"{socket.gethostname()}-{os.getpid()}",
        catalog=subscription.catalog,
        handlers=subscription.handlers,
        max_attempts=consumer.max_attempts,
        claim_idle_ms=consumer.claim_idle_ms,
        batch=consumer.batch,
    )


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
