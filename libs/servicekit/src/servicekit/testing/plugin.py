"""pytest plugin (entry point ``servicekit``): real backends, isolated per run and per test.

Fixtures:

* ``servicekit_backends`` — the chosen servers, started by the first test that needs them
  (directly or through any fixture below) and stopped at the end of the session;
* ``database_url`` — this run's own database, dropped at the end (services migrate it);
* ``db_engine`` / ``db_connection`` / ``db_session`` — each test runs inside an outer
  transaction that is rolled back, the session joining it through SAVEPOINTs;
* ``redis_client`` — a real client; keys under the run's prefix are deleted after each test;
* ``own_redis`` — a Redis server of the test alone, which the test may stop and start
  (same unix socket) to exercise outages; such tests are skipped on the cluster backend,
  whose point is to run everything else against a Redis Cluster;
* ``own_redis_client`` — a client of that server, closed at the end;
* ``database_proxy`` — a :class:`~servicekit.testing.tcp_proxy.TcpProxy` in front of the
  run's PostgreSQL server, which the test may cut or stall (skipped on SQLite).

Nothing is started when pytest starts: the plugin is loaded by every pytest run in an
environment where servicekit is installed, and a run that uses none of these fixtures starts
no Redis and creates no database. The session header says which backends the run will use
(chosen by looking, without starting anything), and the terminal summary which ones it used.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicekit.db.engine import SQLITE_BEGIN_KEY, create_engine
from servicekit.db.session import AsyncSession
from servicekit.redis import AnyRedis, create_redis, discover
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.settings import DatabaseSettings, Environment, ServiceSettings
from servicekit.testing.backends import (
    BackendPlan,
    Backends,
    create_run_database,
    drop_run_database,
    plan_backends,
    start_backends,
)
from servicekit.testing.tcp_proxy import TcpProxy

_PLAN = pytest.StashKey[BackendPlan]()
_STARTED = pytest.StashKey[Backends]()
_TMP_DIR = pytest.StashKey[Path]()


def _plan(config: pytest.Config) -> BackendPlan:
    """The run's backends, chosen once (looking only: nothing is started)."""
    plan = config.stash.get(_PLAN, None)
    if plan is None:
        try:
            plan = plan_backends()
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from exc
        config.stash[_PLAN] = plan
    return plan


def pytest_report_header(config: pytest.Config) -> str:
    """State loudly which backends this run will use (started when a test first needs them)."""
    return _plan(config).describe()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """State loudly which backends the run used, when its tests started any."""
    backends = config.stash.get(_STARTED, None)
    if backends is not None:
        terminalreporter.write_sep("-", "servicekit backends")
        terminalreporter.write_line(backends.describe())


def _stop(config: pytest.Config) -> None:
    """Stop the Redis servers of the run and remove its temporary folder (idempotent)."""
    backends = config.stash.get(_STARTED, None)
    if backends is not None:
        backends.stop()
    tmp = config.stash.get(_TMP_DIR, None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A safety net: the session fixture stops everything, unless its teardown never ran."""
    _stop(config)


@pytest.fixture(scope="session")
def servicekit_backends(pytestconfig: pytest.Config) -> Iterator[Backends]:
    """The run's database server and Redis.

    The embedded Redis or the cluster, when the run uses one, is started here (once, by the
    first test that needs it) and stopped at the end.
    """
    plan = _plan(pytestconfig)
    tmp = Path(tempfile.mkdtemp(prefix="servicekit-test-"))
    pytestconfig.stash[_TMP_DIR] = tmp
    try:
        pytestconfig.stash[_STARTED] = start_backends(plan, tmp)
        yield pytestconfig.stash[_STARTED]
    finally:
        _stop(pytestconfig)


@pytest.fixture(scope="session")
def database_url(servicekit_backends: Backends) -> Iterator[str]:
    """This run's own empty database, dropped afterwards.

    Several services share one run, so each migrates it from a session fixture of its own
    conftest (``servicekit.db.migrations.upgrade``); their tables live side by side.
    """
    url = create_run_database(servicekit_backends)
    try:
        yield url
    finally:
        drop_run_database(servicekit_backends)


@pytest.fixture(scope="session")
def test_settings(
    servicekit_backends: Backends, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> ServiceSettings:
    """Chassis settings pointing at the run's backends."""
    return ServiceSettings(
        service_name="servicekit-test",
        environment=Environment.TEST,
        data_dir=tmp_path_factory.mktemp("data"),
        database=DatabaseSettings(url=database_url, slow_query_ms=1000),
        redis=servicekit_backends.redis_settings(),
    )


@pytest.fixture(scope="session")
async def db_engine(test_settings: ServiceSettings) -> AsyncIterator[AsyncEngine]:
    """One engine for the run."""
    engine = create_engine(test_settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(db_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    async with db_engine.connect() as conn:
        conn.info[SQLITE_BEGIN_KEY] = "BEGIN"  # deferred: holds the write lock only once it writes
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session whose commits become SAVEPOINT releases inside the test's transaction."""
    session = AsyncSession(
        bind=db_connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def redis_client(
    test_settings: ServiceSettings, servicekit_backends: Backends
) -> AsyncIterator[AnyRedis]:
    """A real Redis client; every key under the run's prefix is removed after the test.

    On a cluster, the scan visits every primary and the delete is split by slot.
    """
    client = create_redis(test_settings)
    await discover(client)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{servicekit_backends.redis_key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def database_proxy(servicekit_backends: Backends, database_url: str) -> Iterator[TcpProxy]:
    """A proxy to the run's PostgreSQL server; point a URL at it with :meth:`TcpProxy.url`."""
    if servicekit_backends.database_kind != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no network connection to cut")
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def own_redis(tmp_path: Path, servicekit_backends: Backends) -> Iterator[EmbeddedRedis]:
    """A real Redis-protocol server for this test only; stopped at the end if still running."""
    if servicekit_backends.is_cluster:
        pytest.skip("stops and starts a standalone Redis of its own; the run's Redis is a cluster")
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def own_redis_client(
    own_redis: EmbeddedRedis, test_settings: ServiceSettings
) -> AsyncIterator[AnyRedis]:
    """A client of the test's own Redis (``own_redis``)."""
    client = create_redis(test_settings, own_redis.url)
    yield client
    await client.aclose()
