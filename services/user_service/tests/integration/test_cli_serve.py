"""`user-service serve` as a real process tree: the `make run` path on the embedded defaults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

SERVE = Path(sys.executable).parent / "user-service"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, workers: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            HOST="127.0.0.1", PORT=str(self.port), WORKERS=str(workers), DATA_DIR=str(data_dir)
        )
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(SERVE), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready:\n" + self.output())

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=40)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            for proc in server.tree():
                proc.kill()


def _live_requests(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "http_requests":
            return sum(
                s.value
                for s in family.samples
                if s.name == "http_requests_total" and s.labels.get("route") == "/health/live"
            )
    return 0.0


class TestServe:
    def test_two_workers_share_embedded_redis_and_aggregate_metrics(
        self, data_dir: Path, servers: list[Server]
    ) -> None:
        server = Server(data_dir, workers=2)
        servers.append(server)
        server.wait_ready()
        tree = server.tree()
        names = [p.name() for p in tree]
        assert sum("valkey" in n for n in names) == 1, names  # one Redis for the whole tree
        assert (data_dir / "user_service.db").exists()  # SQLite migrated in the data folder

        with httpx.Client(base_url=server.base, timeout=5) as client:
            for _ in range(30):
                assert client.get("/health/live").status_code == 200
            # Whichever worker answers the scrape, the count covers both workers.
            for _ in range(4):
                assert _live_requests(client.get("/metrics").text) == 30

        assert server.stop(signal.SIGTERM) == 0
        time.sleep(0.2)
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not (data_dir / "redis.sock").exists()

    def test_ctrl_c_stops_server_and_embedded_redis(
        self, data_dir: Path, servers: list[Server]
    ) -> None:
        server = Server(data_dir, workers=1)
        servers.append(server)
        server.wait_ready()
        tree = server.tree()
        assert server.stop(signal.SIGINT) == 0
        time.sleep(0.2)
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert "Traceback" not in server.output()
