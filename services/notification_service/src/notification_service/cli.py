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
from servicekit.runtime.serve import migrate, serve
from servicekit.runtime.worker import run_worker

if TYPE_CHECKING:
    from collections.abc import Sequence

MIGRATIONS = Path(__file__).parent / "migrations"


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
    sub.add_parser("serve", help="serve the HTTP API (HOST, PORT, WORKERS, DATA_DIR)")
    sub.add_parser("worker", help="consume the user events and send the mail until stopped")
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("revision", nargs="?", default="head")
    add_events_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``notification-service``."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    if args.command == "serve":
        return serve(
            settings,
            app_factory="notification_service.main:create_app",
            migrations=MIGRATIONS,
            reload_settings=get_settings.cache_clear,
        )
    if args.command == "worker":
        asyncio.run(run_worker(settings, worker_loops, name="notification.worker"))
        return 0
    if args.command == "migrate":
        return migrate(settings, MIGRATIONS, args.revision)
    return asyncio.run(_events(settings, args))


if __name__ == "__main__":
    sys.exit(main())
