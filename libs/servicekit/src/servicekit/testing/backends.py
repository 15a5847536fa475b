"""Which PostgreSQL/SQLite and Redis a test run uses, and their per-run isolation.

Order of choice: ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` when set; else PostgreSQL on
127.0.0.1:5432 and Redis on 127.0.0.1:6379 when they answer; else SQLite in a temporary
folder and the embedded Redis server. ``SERVICEKIT_TEST_BACKENDS=embedded`` forces the
fallback so the quick-start backends are tested even on a machine that has both servers;
``SERVICEKIT_TEST_BACKENDS=cluster`` starts a Redis Cluster of three primaries on loopback
ports for the run (:mod:`servicekit.testing.redis_cluster`), the database chosen as usual.

Choosing and starting are two steps: :func:`plan_backends` only looks (environment variables,
a TCP connect and a Redis ``PING`` on loopback) and starts nothing; :func:`start_backends`
starts what the plan needs (the embedded Redis or the cluster). The pytest plugin plans when
it prints its header and starts from a session fixture, so a run whose tests use none of its
fixtures starts no server and creates no database.
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
        """One line saying which servers the run used."""
        return "servicekit backends: " + _describe(
            self.database_server_url, self.redis_kind, self.redis_key_prefix
        )


def _describe(database_server_url: str | None, redis_kind: str, redis_key_prefix: str) -> str:
    if database_server_url is None:
        kind, where = "sqlite", "file"
    else:
        db = make_url(database_server_url)
        kind = db.get_backend_name()
        where = f"{db.host}:{db.port or 5432}" if kind == "postgresql" else "file"
    return (
        f"database={kind} ({where}, one database per run), "
        f"redis={redis_kind} (key prefix {redis_key_prefix!r})"
    )


@dataclass(frozen=True)
class BackendPlan:
    """The servers a run will use, chosen without starting any (see :func:`plan_backends`)."""

    choice: str
    #: ``None``: a SQLite file in the run's temporary folder.
    database_server_url: str | None
    #: ``None``: a server started for the run (the embedded one, or the cluster if ``choice``).
    redis_url: str | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def redis_key_prefix(self) -> str:
        """The prefix of every Redis key of the run."""
        return f"test:{self.run_id}:"

    @property
    def redis_kind(self) -> str:
        """What :attr:`Backends.redis_kind` will say, before anything is started."""
        if self.choice == "cluster":
            return "Redis Cluster of three primaries on loopback ports"
        return self.redis_url or "embedded valkey-server (unix socket)"

    def describe(self) -> str:
        """One line for the pytest session header (nothing is started yet)."""
        return "servicekit backends (started when a test first needs them): " + _describe(
            self.database_server_url, self.redis_kind, self.redis_key_prefix
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


def plan_backends() -> BackendPlan:
    """Choose the run's backends (see the module docstring) without starting any server."""
    choice = os.environ.get("SERVICEKIT_TEST_BACKENDS", "").lower()
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"SERVICEKIT_TEST_BACKENDS={choice!r}: expected one of {BACKEND_CHOICES}")
    forced_embedded = choice == "embedded"

    db_url = os.environ.get("TEST_DATABASE_URL") or None
    if db_url is None and not forced_embedded and _tcp_open("127.0.0.1", 5432):
        db_url = DEFAULT_POSTGRES_URL

    redis_url: str | None = None
    if choice != "cluster":
        redis_url = os.environ.get("TEST_REDIS_URL") or None
        if redis_url is None and not forced_embedded and _redis_answers("127.0.0.1", 6379):
            redis_url = DEFAULT_REDIS_URL
    return BackendPlan(choice=choice, database_server_url=db_url, redis_url=redis_url)


def start_backends(plan: BackendPlan, tmp_dir: Path) -> Backends:
    """Start what ``plan`` needs (the embedded Redis or the cluster) inside ``tmp_dir``.

    The caller stops them with :meth:`Backends.stop`; the SQLite file, if any, is in
    ``tmp_dir`` too. The run's own database is created later (:func:`create_run_database`).
    """
    db_url = plan.database_server_url or f"sqlite+aiosqlite:///{tmp_dir / 'test.db'}"
    embedded: EmbeddedRedis | None = None
    cluster: LocalRedisCluster | None = None
    redis_url = plan.redis_url
    if plan.choice == "cluster":
        cluster = LocalRedisCluster(tmp_dir / "redis-cluster")
        redis_url = cluster.start()
    elif redis_url is None:
        embedded = EmbeddedRedis(tmp_dir / "redis")
        redis_url = embedded.start()
    return Backends(
        database_server_url=db_url,
        redis_url=redis_url,
        redis_key_prefix=plan.redis_key_prefix,
        embedded_redis=embedded,
        redis_cluster=cluster,
        run_id=plan.run_id,
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
