"""``/metrics`` and ``/health/live`` for a process that serves no HTTP API (relay, worker).

Prometheus scrapes a worker like a serving process: the same exposition (aggregated over
workers in multiprocess mode), behind the same bearer token (``http.metrics_token``), on
``server.metrics_port``. The server is prometheus-client's own WSGI stack (``wsgiref``) in a
daemon thread, so the worker's event loop never serves a scrape.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer

from servicekit.observability.metrics import render_latest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIEnvironment


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged (the access log is the services' own)."""


def metrics_app(token: str | None) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The WSGI app: ``GET /metrics`` (bearer ``token`` when set) and ``GET /health/live``."""
    expected = f"Bearer {token}".encode() if token else None

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health/live":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
            return [b"metrics need the configured bearer token"]
        payload, content_type = render_latest()
        start_response("200 OK", [("Content-Type", content_type)])
        return [payload]

    return app


class MetricsExporter:
    """Serves :func:`metrics_app` on ``host:port`` from :meth:`start` until :meth:`stop`."""

    def __init__(self, host: str, port: int, *, token: str | None) -> None:
        self.host = host
        self.port = port
        self.token = token
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen (the port is bound before this returns)."""
        self._server = make_server(
            self.host,
            self.port,
            metrics_app(self.token),
            ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-exporter", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop listening."""
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)  # waits for serve_forever's next poll
            server.server_close()
