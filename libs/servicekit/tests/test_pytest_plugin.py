"""The pytest plugin starts backends only when a test needs them, and cleans up at the end.

Every pytest run in an environment where servicekit is installed loads the plugin (entry
point ``servicekit``). Each case runs pytest in a subprocess on a throwaway project and
records, with a Python audit hook, every process the run starts; the database URL it may use
points at a listening socket of this test, which counts the connections made to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
import pytest
from sqlalchemy.engine import make_url

from servicekit.testing import Backends

pytestmark = pytest.mark.integration

#: Runs pytest with an audit hook appending each process start (argv included) to a file.
RECORDING_PYTEST = """\
import json, os, sys

LOG = os.environ["SPAWN_LOG"]
EVENTS = {"subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn", "os.system"}


def record(event, args):
    if event in EVENTS:
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps([event, repr(args)]) + "\\n")


sys.addaudithook(record)
import pytest

sys.exit(pytest.main(sys.argv[1:]))
"""

TRIVIAL_TEST = "def test_trivial():\n    assert 1 + 1 == 2\n"

#: A test that needs the backends: it writes down what it was given.
BACKENDS_TEST = """\
import json, os


def test_uses_the_backends(servicekit_backends, database_url):
    redis = servicekit_backends.embedded_redis
    info = {"database_url": database_url, "redis_pid": redis.process.pid if redis else None}
    with open(os.environ["BACKENDS_INFO"], "w", encoding="utf-8") as out:
        json.dump(info, out)
"""

#: Environment variables of the outer run that must not reach the inner one.
CLEARED = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "SERVICEKIT_TEST_BACKENDS",
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
)
SLOW_PLUGINS_OFF = ("-p", "no:schemathesis", "-p", "no:hypothesispytest")
SERVERS = ("valkey-server", "redis-server")
PLANNED = "servicekit backends (started when a test first needs them): "
USED = "servicekit backends: "


@dataclass
class Run:
    """What an inner pytest run did."""

    returncode: int
    output: str
    spawned: list[str]
    leftovers: list[str]

    @property
    def servers_started(self) -> list[str]:
        return [line for line in self.spawned if any(name in line for name in SERVERS)]


class Listener:
    """A TCP port that accepts nothing itself; the kernel queues whatever connects to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connections(self) -> int:
        """How many connections were made so far (drains the queue)."""
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.sock.close()


def run_pytest(root: Path, test: str, env: dict[str, str], *args: str) -> Run:
    """Pytest on a fresh project in ``root`` holding one test file, bounded in time."""
    project, tmp = root / "project", root / "tmp"
    project.mkdir()
    tmp.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_one.py").write_text(test)
    runner = root / "recording_pytest.py"
    runner.write_text(RECORDING_PYTEST)
    spawn_log = root / "spawned.jsonl"
    spawn_log.touch()
    child_env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    child_env.update(env, SPAWN_LOG=str(spawn_log), TMPDIR=str(tmp))
    done = subprocess.run(
        # Other plugins are left out only to save their import time (seconds per run).
        [sys.executable, str(runner), "-p", "no:cacheprovider", *SLOW_PLUGINS_OFF, *args],
        cwd=project,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(
        returncode=done.returncode,
        output=done.stdout + done.stderr,
        spawned=spawn_log.read_text().splitlines(),
        # The plugin's run folder and the embedded server's socket folder.
        leftovers=[p.name for p in tmp.iterdir() if p.name.startswith(("servicekit-", "svckit-"))],
    )


def server_running(pid: int) -> bool:
    """Whether ``pid`` is (still) a Redis server."""
    try:
        return psutil.Process(pid).name() in SERVERS
    except psutil.NoSuchProcess:
        return False


class TestNothingStartsUntilNeeded:
    @pytest.mark.parametrize(
        ("choice", "args"),
        [
            pytest.param("embedded", (), id="embedded-run"),
            pytest.param("embedded", ("--co",), id="embedded-collect-only"),
            pytest.param("cluster", (), id="cluster-run"),
        ],
    )
    def test_a_run_without_the_fixtures_starts_no_server_and_creates_no_database(
        self, tmp_path: Path, listener: Listener, choice: str, args: tuple[str, ...]
    ) -> None:
        # Eager start-up would run valkey-server (embedded) or three servers (cluster), and
        # create the run's database on the "PostgreSQL" server behind the listener.
        env = {
            "SERVICEKIT_TEST_BACKENDS": choice,
            "TEST_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{listener.port}/db",
        }
        run = run_pytest(tmp_path, TRIVIAL_TEST, env, *args)
        assert run.returncode == 0, run.output
        assert PLANNED in run.output  # the plugin was loaded and said what it would use
        assert run.servers_started == []
        assert listener.connections() == 0
        assert run.leftovers == []
        assert USED not in run.output

    def test_servers_given_by_url_are_not_even_contacted(
        self, tmp_path: Path, listener: Listener
    ) -> None:
        url = f"127.0.0.1:{listener.port}"
        env = {
            "TEST_DATABASE_URL": f"postgresql+asyncpg://postgres@{url}/db",
            "TEST_REDIS_URL": f"redis://{url}/0",
        }
        run = run_pytest(tmp_path, TRIVIAL_TEST, env)
        assert run.returncode == 0, run.output
        assert PLANNED in run.output
        assert run.spawned == []
        assert listener.connections() == 0


class TestStartedOnFirstUse:
    """The same runs, with a test that needs the backends: the checks above do see them."""

    def test_the_embedded_redis_starts_for_the_test_and_stops_at_the_end(
        self, tmp_path: Path
    ) -> None:
        info = tmp_path / "info.json"
        env = {"SERVICEKIT_TEST_BACKENDS": "embedded", "BACKENDS_INFO": str(info)}
        run = run_pytest(tmp_path, BACKENDS_TEST, env, "-q")
        assert run.returncode == 0, run.output
        assert len(run.servers_started) == 1, run.spawned
        assert f"{USED}database=sqlite" in run.output  # said loudly, even with -q
        assert "redis=embedded valkey-server" in run.output
        pid = json.loads(info.read_text())["redis_pid"]
        assert not server_running(pid)
        assert run.leftovers == []  # its folder and the SQLite file went with the session

    async def test_the_run_database_is_created_for_the_test_and_dropped_at_the_end(
        self, tmp_path: Path, listener: Listener, servicekit_backends: Backends
    ) -> None:
        if servicekit_backends.database_kind != "postgresql":
            pytest.skip("needs PostgreSQL: the SQLite file of a run is checked above")
        info = tmp_path / "info.json"
        env = {
            "TEST_DATABASE_URL": servicekit_backends.database_server_url,
            "TEST_REDIS_URL": f"redis://127.0.0.1:{listener.port}/0",  # not needed: no contact
            "BACKENDS_INFO": str(info),
        }
        run = await asyncio.to_thread(run_pytest, tmp_path, BACKENDS_TEST, env)
        assert run.returncode == 0, run.output
        assert run.servers_started == []
        assert listener.connections() == 0
        name = make_url(json.loads(info.read_text())["database_url"]).database
        assert name is not None
        assert name.startswith("test_")
        server = make_url(servicekit_backends.database_server_url)
        conn = await asyncpg.connect(
            host=server.host,
            port=server.port or 5432,
            user=server.username,
            password=server.password,
            database=server.database or "postgres",
            timeout=5,
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        finally:
            await conn.close()
        assert exists is None, f"the run's database {name} was not dropped"
