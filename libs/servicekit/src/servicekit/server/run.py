"""Run a service's app under uvicorn with the edge limits of ``settings.server``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from servicekit.server.protocol import CONFIG_ATTRIBUTE, GuardedHttpToolsProtocol, ServerLimits

if TYPE_CHECKING:
    from servicekit.settings import ServiceSettings

#: uvicorn's exit status for a worker that never started.
_STARTUP_FAILURE = 3


def run_server(app_factory: str, settings: ServiceSettings) -> None:
    """Serve ``app_factory`` (``"package.module:create_app"``) until stopped.

    What ``uvicorn.run`` does, except that the config carries the :class:`ServerLimits`
    to the protocol of every worker; ``uvicorn.run`` builds its config itself and has no
    way to pass them.
    """
    import uvicorn  # the server only where one is run: tests and the CLI's other commands skip it
    from uvicorn.supervisors import Multiprocess

    server_settings = settings.server
    config = uvicorn.Config(
        app_factory,
        factory=True,
        host=server_settings.host,
        port=server_settings.port,
        workers=server_settings.workers,
        http=GuardedHttpToolsProtocol,
        log_config=None,
        access_log=False,  # the chassis writes the access log
        server_header=False,
        proxy_headers=False,  # client IPs come from the trusted-proxy rules instead
        timeout_keep_alive=server_settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=server_settings.graceful_timeout_s,
        timeout_worker_healthcheck=server_settings.worker_healthcheck_timeout_s,
    )
    setattr(config, CONFIG_ATTRIBUTE, limits_of(settings))
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    config.load_app()
    server = uvicorn.Server(config=config)
    server.run()
    if not server.started:
        sys.exit(_STARTUP_FAILURE)


def limits_of(settings: ServiceSettings) -> ServerLimits:
    """The connection limits ``settings.server`` sets."""
    server = settings.server
    return ServerLimits(
        max_header_bytes=server.max_header_bytes,
        max_headers=server.max_headers,
        header_timeout_s=server.header_timeout_s,
        body_timeout_s=server.body_timeout_s,
        max_in_flight=server.max_in_flight,
    )
