"""``notification-service serve | worker | migrate | events dlq …``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from notification_service.config import NotificationServiceSettings, get_settings
from notification_service.lifespan import worker_loops
from servicekit.events import add_events_commands, run_events_command
from servicekit.observability.logging import configure_logging
from servicekit.redis import KeySpace, create_redis
from servicekit.runtime.worker import run_worker
from servicekit.server.commands import ServiceCommands, add_service_commands

if TYPE_CHECKING:
    from collections.abc import Sequence

MIGRATIONS = Path(__file__).parent / "migrations"
COMMANDS = ServiceCommands(
    "notification_service.main:create_app", MIGRATIONS, get_settings.cache_clear
)


async def _events(settings: NotificationServiceSettings, args: argparse.Namespace) -> int:
    if not settings.redis.url:
        raise SystemExit("events: REDIS_URL is not set (the embedded Redis lives in `serve`)")
    redis = create_redis(settings, settings.redis.url)
    try:
        source = KeySpace.of(settings, settings.users.namespace)
        return await run_events_command(args, redis, source=source, group=settings.service_name)
    finally:
        await redis.aclose()


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="notification-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_service_commands(sub)
    sub.add_parser("worker", help="consume the user events and send the mail until stopped")
    add_events_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``notification-service``."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    status = COMMANDS.run(args, settings)
    if status is not None:
        return status
    if args.command == "worker":
        asyncio.run(run_worker(settings, worker_loops, name="notification.worker"))
        return 0
    return asyncio.run(_events(settings, args))


if __name__ == "__main__":
    sys.exit(main())
