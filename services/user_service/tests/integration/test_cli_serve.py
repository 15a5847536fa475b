"""`user-service serve` as a real process tree: the `make run` path on the embedded defaults."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servicekit.testing.process import ServiceProcess

pytestmark = pytest.mark.integration

SERVE = Path(sys.executable).parent / "user-service"


def start_server(data_dir: Path, workers: int) -> ServiceProcess:
    """`user-service serve` on the embedded defaults (no DATABASE_URL / REDIS_URL)."""
    return ServiceProcess(
        [str(SERVE), "serve"],
        log_path=data_dir.parent / "serve.log",
        env={"DATABASE_URL": None, "REDIS_URL": None, "WORKERS": str(workers),
             "DATA_DIR": str(data_dir)},
    )  # fmt: skip


def tree(server: ServiceProcess) -> list[psutil.Process]:
    parent = psutil.Process(server.pid)
    return [parent, *parent.children(recursive=True)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def servers() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for server in started:
        server.kill()


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
        self, data_dir: Path, servers: list[ServiceProcess]
    ) -> None:
        server = start_server(data_dir, workers=2)
        servers.append(server)
        server.wait_ready()
        procs = tree(server)
        names = [p.name() for p in procs]
        assert sum("valkey" in n for n in names) == 1, names  # one Redis for the whole tree
        assert (data_dir / "user_service.db").exists()  # SQLite migrated in the data folder

        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            for _ in range(30):
                assert client.get("/health/live").status_code == 200
            # Whichever worker answers the scrape, the count covers both workers.
            for _ in range(4):
                assert _live_requests(client.get("/metrics").text) == 30

        assert server.stop(signal.SIGTERM) == 0
        time.sleep(0.2)
        assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not (data_dir / "redis.sock").exists()

    def test_ctrl_c_stops_server_and_embedded_redis(
        self, data_dir: Path, servers: list[ServiceProcess]
    ) -> None:
        server = start_server(data_dir, workers=1)
        servers.append(server)
        server.wait_ready()
        procs = tree(server)
        assert server.stop(signal.SIGINT) == 0
        time.sleep(0.2)
        assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert "Traceback" not in server.output()

    def test_the_issuer_is_the_address_served(
        self, data_dir: Path, servers: list[ServiceProcess]
    ) -> None:
        """Only `PORT` set (as `make run` with PORT=…): metadata and tokens name that port."""
        server = start_server(data_dir, workers=1)
        servers.append(server)
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            metadata = client.get("/.well-known/oauth-authorization-server").json()
            assert metadata["issuer"] == server.base_url
            assert metadata["token_endpoint"] == f"{server.base_url}/oauth/token"
            account = {"email": "port@example.com", "password": "correct horse battery"}
            assert client.post("/api/v1/users", json=account).status_code == 201
            form = {"grant_type": "password", "username": account["email"]}
            token = client.post("/oauth/token", data={**form, "password": account["password"]})
        claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
        assert claims["iss"] == server.base_url
