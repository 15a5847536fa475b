"""The ``<service> serve`` and ``migrate`` commands every service shares.

``serve`` runs the service's app factory under uvicorn. With nothing configured it first
migrates the SQLite file and starts one embedded Redis for the whole process tree (the
workers inherit ``REDIS_URL``); with several workers it gives them a Prometheus
multiprocess folder so that ``/metrics`` in any worker sums them all. Everything it
created is removed again when the server stops.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.db.migrations import upgrade
from servicekit.observability.logging import get_logger
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.server.run import run_server

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from pathlib import Path
    from types import FrameType

    from servicekit.settings import ServiceSettings

log = get_logger(__name__)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn re-raises the signal once it has drained; leave through `finally` blocks.
    raise SystemExit(0)


def serve(
    settings: ServiceSettings,
    *,
    app_factory: str,
    migrations: Path,
    reload_settings: Callable[[], None],
) -> int:
    """Serve ``app_factory`` (``package.main:create_app``) with ``settings``' server group.

    ``reload_settings`` clears the service's cached settings, so the app factory reads
    them again with the URLs exported here.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedRedis | None = None
    metrics_dir: Path | None = None
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if not settings.database.url:
            # The quick-start database: a SQLite file migrated on start.
            upgrade(migrations, settings.resolved_database_url())
        if not settings.redis.url:
            embedded = EmbeddedRedis(settings.data_dir)
            os.environ["REDIS_URL"] = embedded.start()
        workers = settings.server.workers
        if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            metrics_dir = settings.data_dir.resolve() / f"prometheus-{os.getpid()}"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        reload_settings()
        host, port = settings.server.host, settings.server.port
        log.info(
            "server.starting",
            url=f"http://{host}:{port}",
            docs=f"http://{host}:{port}/docs",
            workers=workers,
            database=settings.resolved_database_url().split("://")[0],
            redis="embedded" if embedded else "configured",
        )
        print(f"{settings.service_name} API docs: http://{host}:{port}/docs", flush=True)  # noqa: T201
        run_server(app_factory, settings)
    except KeyboardInterrupt:
        pass
    finally:
        reload_settings()
        if embedded is not None:
            embedded.stop()
        if metrics_dir is not None:  # only the folder this command created
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def migrate(settings: ServiceSettings, migrations: Path, revision: str) -> int:
    """Migrate the configured database to ``revision``."""
    upgrade(migrations, settings.resolved_database_url(), revision)
    log.info("migrate.done", revision=revision)
    return 0


def add_service_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``migrate [REVISION]`` to a service's sub-command parsers."""
    sub.add_parser("serve", help="serve the HTTP API (HOST, PORT, WORKERS, DATA_DIR)")
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("revision", nargs="?", default="head")


@dataclass(frozen=True, slots=True)
class ServiceCommands:
    """What ``serve`` and ``migrate`` need to know of a service."""

    #: The app factory, ``package.main:create_app``.
    app_factory: str
    #: The service's Alembic folder.
    migrations: Path
    #: Clears the service's cached settings (the app factory reads them again).
    reload_settings: Callable[[], None]

    def run(self, args: argparse.Namespace, settings: ServiceSettings) -> int | None:
        """Carry out ``serve`` or ``migrate``; ``None`` for any other command."""
        if args.command == "serve":
            return serve(
                settings,
                app_factory=self.app_factory,
                migrations=self.migrations,
                reload_settings=self.reload_settings,
            )
        if args.command == "migrate":
            return migrate(settings, self.migrations, args.revision)
        return None
