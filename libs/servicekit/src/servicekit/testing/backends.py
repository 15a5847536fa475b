"""Which PostgreSQL/SQLite and Redis a test run uses, and their per-run isolation.

Order of choice: ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set; else PostgreSQL on
127.0.0.1:5432 and Redis on 127.0.0.1:6379 when they answer; else SQLite in a temporary
folder and the embedded Redis server. ``SERVICEKIT_TEST_BACKENDS=embedded`` forces the
fallback so the quick-start backends are tested even on a machine that has both servers;
``SERVICEKIT_TEST_BACKENDS=cluster`` starts a Redis Cluster of three primaries on loopback
ports for the run (:mod:`servicekit.testing.redis_cluster`), the database chosen as usual.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from servicekit.redis.embedded import EmbeddedRedis
from servicekit.settings import RedisSettings
from servicekit.testing.redis_cluster import LocalRedisCluster

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Values of ``SERVICEKIT_TEST_BACKENDS`` ("" is the default choice).
BACKEND_CHOICES = ("", "embedded", "cluster")


@dataclass
class Backends:
    """The servers of one test run; ``database_url`` is set once the run's database exists."""

    database_server_url: str
    redis_url: str
    redis_key_prefix: str
    embedded_redis: EmbeddedRedis | None = None
    redis_cluster: LocalRedisCluster | None = None
    database_url: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def database_kind(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return make_url(self.database_server_url).get_backend_name()

    @property
    def is_cluster(self) -> bool:
        """Whether Redis is a cluster (clients need ``RedisSettings.cluster``)."""
        return self.redis_cluster is not None

    @property
    def redis_kind(self) -> str:
        """The embedded server, the cluster, or the Redis URL in use."""
        if self.redis_cluster is not None:
            return self.redis_cluster.describe()
        return "embedded valkey-server (unix socket)" if self.embedded_redis else self.redis_url

    def redis_settings(self) -> RedisSettings:
        """Client settings for the run's Redis (its URL, key prefix and mode)."""
        return RedisSettings(
            url=self.redis_url, key_prefix=self.redis_key_prefix, cluster=self.is_cluster
        )

    def stop(self) -> None:
        """Stop the Redis servers this run started."""
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.redis_cluster is not None:
            self.redis_cluster.stop()

    def describe(self) -> str:
        """One line for the pytest session header."""
        db = make_url(self.database_server_url)
        where = f"{db.host}:{db.port or 5432}" if self.database_kind == "postgresql" else "file"
        return (
            f"servicekit backends: database={self.database_kind} ({where}, one database per run), "
            f"redis={self.redis_kind} (key prefix {self.redis_key_prefix!r})"
        )


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def detect_backends(tmp_dir: Path) -> Backends:
    """Pick the run's backends (see the module docstring); starts the embedded Redis if needed."""
    choice = os.environ.get("SERVICEKIT_TEST_BACKENDS", "").lower()
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"SERVICEKIT_TEST_BACKENDS={choice!r}: expected one of {BACKEND_CHOICES}")
    forced_embedded = choice == "embedded"
    run_id = uuid.uuid4().hex[:10]

    db_url = os.environ.get("TEST_DATABASE_URL")
    if not db_url:
        if not forced_embedded and _tcp_open("127.0.0.1", 5432):
            db_url = DEFAULT_POSTGRES_URL
        else:
            db_url = f"sqlite+aiosqlite:///{tmp_dir / 'test.db'}"

    redis_url = os.environ.get("TEST_REDIS_URL")
    embedded: EmbeddedRedis | None = None
    cluster: LocalRedisCluster | None = None
    if choice == "cluster":
        cluster = LocalRedisCluster(tmp_dir / "redis-cluster")
        redis_url = cluster.start()
    elif not redis_url:
        if not forced_embedded and _redis_answers("127.0.0.1", 6379):
            redis_url = DEFAULT_REDIS_URL
        else:
            embedded = EmbeddedRedis(tmp_dir / "redis")
            redis_url = embedded.start()
    return Backends(
        database_server_url=db_url,
        redis_url=redis_url,
        redis_key_prefix=f"test:{run_id}:",
        embedded_redis=embedded,
        redis_cluster=cluster,
        run_id=run_id,
    )


def _with_database(url: str, name: str) -> str:
    parsed: URL = make_url(url).set(database=name)
    return parsed.render_as_string(hide_password=False)


async def _pg_execute(server_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_run_database(backends: Backends) -> str:
    """Create the run's own database (PostgreSQL) or pick its file (SQLite)."""
    if backends.database_kind == "postgresql":
        name = f"test_{backends.run_id}"
        asyncio.run(_pg_execute(backends.database_server_url, f'CREATE DATABASE "{name}"'))
        backends.database_url = _with_database(backends.database_server_url, name)
    else:
        backends.database_url = backends.database_server_url
    return backends.database_url


def drop_run_database(backends: Backends) -> None:
    """Drop the run's database; the SQLite file goes with its temporary folder."""
    if backends.database_kind == "postgresql" and backends.database_url:
        name = make_url(backends.database_url).database
        asyncio.run(
            _pg_execute(
                backends.database_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            )
        )
