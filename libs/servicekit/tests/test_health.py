"""Liveness, readiness, and readiness with a real Redis that the test stops and starts."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import pytest

from servicekit.app import create_app
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.settings import RedisSettings, ServiceSettings
from servicekit.testing import app_client

pytestmark = pytest.mark.integration


class TestReadiness:
    async def test_redis_down_is_named_within_two_seconds_and_recovers(
        self, test_settings: ServiceSettings, own_redis: EmbeddedRedis
    ) -> None:
        settings = test_settings.model_copy(
            update={"redis": RedisSettings(url=own_redis.url, health_check_interval_s=0)}
        )
        async with app_client(create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 200

            own_redis.stop()
            started = time.monotonic()
            response = await client.get("/health/ready")
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert body["error"] == "not_ready"
            assert "redis" in body["detail"]
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["redis"] != "ok"
            assert elapsed < 2.0
            assert (await client.get("/health/live")).status_code == 200

            own_redis.start()  # same socket: the client reconnects without a restart
            assert (await client.get("/health/ready")).status_code == 200

    async def test_not_ready_once_sigterm_arrives(self, test_settings: ServiceSettings) -> None:
        received: list[int] = []

        def server_handler(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)  # stands in for uvicorn's own handler

        original = signal.signal(signal.SIGTERM, server_handler)
        try:
            async with app_client(create_app(test_settings)) as client:
                assert (await client.get("/health/ready")).status_code == 200
                signal.raise_signal(signal.SIGTERM)
                response = await client.get("/health/ready")
                assert response.status_code == 503
                assert response.json()["checks"] == {"shutdown": "in progress"}
                assert (await client.get("/health/live")).status_code == 200
            assert received == [signal.SIGTERM], "the server's handler still runs"
            assert signal.getsignal(signal.SIGTERM) is server_handler
        finally:
            signal.signal(signal.SIGTERM, original)


class TestEmbeddedRedis:
    def test_starts_on_a_unix_socket_and_stops_cleanly(self, tmp_path: Path) -> None:
        server = EmbeddedRedis(tmp_path)
        url = server.start()
        process = server.process
        assert url.startswith("unix://")
        assert server.socket_path.exists()
        server.stop()
        assert process is not None
        assert process.poll() is not None
        assert not server.socket_path.exists()

    def test_long_data_dir_falls_back_to_a_short_socket_path(self, tmp_path: Path) -> None:
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        with EmbeddedRedis(deep) as url:
            assert len(url) < 110
