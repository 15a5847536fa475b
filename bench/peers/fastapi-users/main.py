"""Serve the example the way ``user-service serve`` serves the service (the example's main.py).

The ``uvicorn.run`` call has the flags of ``bench/baseline_app.py`` and
``servicekit.server.run_server``: worker count from ``WORKERS``, no log config, no access
log, no ``Server`` header, no proxy headers, loop and HTTP implementation on ``auto`` (uvloop
and httptools, both locked here at the workspace's versions). The one difference: the
service and the baseline use servicekit's guarded httptools protocol (header limits, load
shedding), which this environment does not have; the peer gets uvicorn's own, which does
less per request. The app is the module-level ``app`` of the example, not a factory.

    PEER_DATABASE_URL=postgresql+asyncpg://... PEER_REDIS_URL=redis://... PEER_SECRET=... \
    PEER_STRATEGY=jwt HOST=127.0.0.1 PORT=8002 WORKERS=1 .venv/bin/python main.py
"""

import os
from pathlib import Path

import uvicorn

if __name__ == "__main__":
    uvicorn.run(
        "app.app:app",
        app_dir=str(Path(__file__).resolve().parent),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8002")),
        workers=int(os.environ.get("WORKERS", "1")),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(os.environ.get("GRACEFUL_TIMEOUT_S", "20")),
    )
