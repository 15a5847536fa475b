"""Start-up of the courier and of the consumer group that feeds it.

Both run inside the serving process unless ``courier.in_process`` / ``consumer.in_process``
are off; ``notification-service worker`` runs them on their own (see :func:`worker_loops`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from notification_service.models import inbox
from notification_service.schemas.events import catalog
from notification_service.services.courier import Courier
from notification_service.services.directory import UserDirectory
from notification_service.services.handlers import MailHandlers
from notification_service.services.rendering import MailRenderer
from notification_service.services.transport import build_transport
from servicekit.events import EventConsumerGroup, Sealer, Subscription, consumer_group

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from notification_service.config import NotificationServiceSettings
    from servicekit.db import AsyncSession
    from servicekit.redis import AnyRedis
    from servicekit.runtime.worker import Runnable, WorkerBackends
    from servicekit.state import AppState


def build_courier(
    settings: NotificationServiceSettings, sessionmaker: async_sessionmaker[AsyncSession]
) -> Courier:
    """The courier of ``settings``' transport (not started)."""
    return Courier(
        sessionmaker,
        build_transport(settings.email, production=settings.is_production),
        MailRenderer(),
        Sealer(settings.events.seal_keys),
        email=settings.email,
        settings=settings.courier,
        directory=UserDirectory.of(settings.users),
    )


def build_consumers(
    settings: NotificationServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: AnyRedis,
    courier: Courier,
) -> EventConsumerGroup:
    """The consumer group on the user service's streams, waking ``courier`` (not started)."""
    domain = settings.email.from_address.rpartition("@")[2] or "localhost"
    handlers = MailHandlers(
        wake=courier.wake,
        message_domain=domain,
        frontend_url=settings.email.frontend_url.rstrip("/"),
    )
    subscription = Subscription(
        producer=settings.users.namespace,
        catalog=catalog(),
        handlers=handlers.by_type(),
        inbox=inbox,
    )
    return consumer_group(settings, settings.consumer, sessionmaker, redis, subscription)


def worker_loops(backends: WorkerBackends) -> list[Runnable]:
    """What ``notification-service worker`` runs: the consumers and the courier."""
    settings = cast("NotificationServiceSettings", backends.settings)
    courier = build_courier(settings, backends.sessionmaker)
    return [build_consumers(settings, backends.sessionmaker, backends.redis, courier), courier]


async def courier_startup(state: AppState) -> Callable[[], Awaitable[None]]:
    """Provide the courier (the admin retry wakes it); run it and the consumers in process."""
    settings = cast("NotificationServiceSettings", state.settings)
    courier = build_courier(settings, state.sessionmaker)
    consumers = build_consumers(settings, state.sessionmaker, state.redis, courier)
    state.provide(courier)
    state.provide(consumers)
    if settings.courier.in_process:
        courier.start()
    if settings.consumer.in_process:
        consumers.start()

    async def cleanup() -> None:
        await consumers.stop()
        await courier.stop()

    return cleanup
