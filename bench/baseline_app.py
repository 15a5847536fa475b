"""The baseline of ``make bench``: a bare FastAPI app with one route.

The route returns a constant small JSON object; the app is served the way
``user-service serve`` serves the service.

The ``uvicorn.run`` call mirrors ``servicekit.server.run_server`` flag for flag (factory,
worker count, no log config, no access log, no ``Server`` header, no proxy headers, the loop
left on ``auto``, which picks uvloop, and servicekit's guarded httptools protocol, here with
its default limits, which are the settings' defaults). If the
service's server or flags change, change them here too, or the ratios stop meaning anything.

    HOST=127.0.0.1 PORT=8001 WORKERS=1 python bench/baseline_app.py
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

PATH = "/api/v1/ping"


def create_app() -> FastAPI:
    """One route, no middleware, no dependencies."""
    app = FastAPI(title="baseline", debug=False)

    @app.get(PATH)
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    """Serve on ``HOST``:``PORT`` with ``WORKERS`` uvicorn workers."""
    import uvicorn

    from servicekit.server import GuardedHttpToolsProtocol

    uvicorn.run(
        "baseline_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8001")),
        workers=int(os.environ.get("WORKERS", "1")),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        http=GuardedHttpToolsProtocol,
        timeout_graceful_shutdown=int(os.environ.get("GRACEFUL_TIMEOUT_S", "20")),
    )


if __name__ == "__main__":
    main()
