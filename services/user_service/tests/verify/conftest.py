"""Fault injection against ``user-service serve`` run as a real process.

The service reaches the run's PostgreSQL database through a :class:`TcpProxy` the test cuts
and restores, and a Redis server of the test's own (``own_redis``) that it stops and starts.
Settings are production's (JSON logs, a real signing key, default pool and Redis timeouts);
rate limits stay on, with limits high enough that the load never meets them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.redis.embedded import EmbeddedRedis
from servicekit.testing.process import ServiceProcess
from servicekit.testing.tcp_proxy import TcpProxy
from user_service.config import DEFAULT_RULES
from user_service.keys import generate_private_key, private_key_pem
from user_service.models import User

from .harness import MEASUREMENTS_ENV, SERVE, Measure, StartService
from .load import EMAIL_PREFIX


@pytest.fixture
def signing_key_file(tmp_path: Path) -> Path:
    """A fresh Ed25519 signing key, as production mounts one."""
    path = tmp_path / "jwt.pem"
    path.write_bytes(private_key_pem(generate_private_key("EdDSA")))
    path.chmod(0o600)
    return path


@pytest.fixture
def start_service(
    tmp_path: Path,
    database_url: str,
    database_proxy: TcpProxy,
    own_redis: EmbeddedRedis,
    signing_key_file: Path,
) -> Iterator[StartService]:
    """Start ``user-service serve`` and wait until it is ready.

    The database is reached through the proxy and Redis is the test's own; ``env`` entries
    add to or override the defaults. Killed at the end.
    """
    started: list[ServiceProcess] = []
    proxied = database_proxy.url_for(database_url)
    # Limits on (authentication fails closed without Redis) but far above the load.
    rules = {name: {"limit": 1_000_000} for name in DEFAULT_RULES}

    def start(**env: str) -> ServiceProcess:
        server = ServiceProcess(
            [str(SERVE), "serve"],
            log_path=tmp_path / f"serve-{len(started)}.log",
            env={
                "DATABASE_URL": proxied,
                "REDIS_URL": own_redis.url,
                "DATA_DIR": str(tmp_path / "data"),
                "WORKERS": "1",
                "PROMETHEUS_MULTIPROC_DIR": None,
                "USER_SERVICE_ENVIRONMENT": "production",
                "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
                "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
                "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(signing_key_file),
                "USER_SERVICE_RATE_LIMIT__RULES": json.dumps(rules),
                "USER_SERVICE_PASSWORD__HASH_WORKERS": "2",
                # The fuzz run reads the API description, which production keeps closed.
                "USER_SERVICE_HTTP__EXPOSE_DOCS": "true",
                **env,
            },
        )
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
async def verify_users(db_engine: AsyncEngine) -> AsyncIterator[None]:
    """Delete the users (and with them sessions) the scenario created."""
    yield
    async with db_engine.begin() as conn:
        await conn.execute(delete(User).where(User.email.like(f"{EMAIL_PREFIX}%")))


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Measure:
    """Record a timing: printed, and appended to ``$VERIFY_MEASUREMENTS`` when set."""

    def record(name: str, value: float) -> None:
        line = {"test": request.node.nodeid, "name": name, "value": round(value, 3)}
        print(f"measured {name} = {value:.3f}")  # noqa: T201 - shown with -s / -rP
        path = os.environ.get(MEASUREMENTS_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")

    return record
