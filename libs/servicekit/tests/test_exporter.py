"""A process without HTTP API serves /metrics (behind the token) and /health/live."""

from __future__ import annotations

import httpx
import pytest

from servicekit.observability import metrics
from servicekit.observability.exporter import MetricsExporter

pytestmark = pytest.mark.integration


async def test_metrics_need_the_token_and_liveness_does_not() -> None:
    metrics.counter("exporter_test_total", "A counter only this test writes.").inc(3)
    exporter = MetricsExporter("127.0.0.1", 0, token="s3cret-token")
    exporter.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{exporter.port}") as client:
            assert (await client.get("/health/live")).status_code == 200
            refused = await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
            assert scraped.status_code == 200
            assert "exporter_test_total 3.0" in scraped.text
            assert (await client.get("/other")).status_code == 404
    finally:
        await exporter.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{exporter.port}/health/live", timeout=1)
