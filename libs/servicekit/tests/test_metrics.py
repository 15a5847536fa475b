"""Prometheus metrics: labelled by route template, never by raw path."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from servicekit.app import create_app
from servicekit.settings import ServiceSettings
from servicekit.testing import app_client

from .utils.items import items_router

pytestmark = pytest.mark.integration

ITEM_ROUTE = "/items/{item_id}"
UNMATCHED = "<unmatched>"

#: ``(sample name, sorted labels)`` -> value
Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def client(kit_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(kit_app) as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> tuple[Snapshot, dict[str, str], list[Sample]]:
    """``GET /metrics`` parsed: the samples by name and labels, family types, raw samples."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    snapshot: Snapshot = {}
    types: dict[str, str] = {}
    samples: list[Sample] = []
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            snapshot[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            samples.append(sample)
    return snapshot, types, samples


def requests_total(snapshot: Snapshot, method: str, route: str, status: str) -> float:
    labels = tuple(sorted({"method": method, "route": route, "status": status}.items()))
    return snapshot.get(("http_requests_total", labels), 0.0)


def latency_count(snapshot: Snapshot, method: str, route: str) -> float:
    labels = tuple(sorted({"method": method, "route": route}.items()))
    return snapshot.get(("http_request_duration_seconds_count", labels), 0.0)


class TestHttpMetrics:
    async def test_an_included_router_is_labelled_with_its_prefix(
        self, test_settings: ServiceSettings, kit_tables: None
    ) -> None:
        app = create_app(test_settings, [("/api/v1", items_router())])
        async with app_client(app) as client:
            created = await client.post("/api/v1/items", json={"name": f"p-{uuid.uuid4().hex}"})
            item_id = created.json()["id"]
            assert (await client.get(f"/api/v1/items/{item_id}")).status_code == 200
            _, _, samples = await scrape(client)
        routes = {s.labels.get("route") for s in samples if s.name == "http_requests_total"}
        assert "/api/v1/items/{item_id}" in routes

    async def test_requests_are_counted_by_route_template(self, client: httpx.AsyncClient) -> None:
        ids: list[int] = []
        for _ in range(2):
            created = await client.post("/items", json={"name": f"m-{uuid.uuid4().hex[:12]}"})
            assert created.status_code == 201, created.text
            ids.append(int(created.json()["id"]))
        before, _, _ = await scrape(client)

        for item_id in ids:
            assert (await client.get(f"/items/{item_id}")).status_code == 200
        assert (await client.get("/nope")).status_code == 404

        after, types, samples = await scrape(client)

        def delta(method: str, route: str, status: str) -> float:
            return requests_total(after, method, route, status) - requests_total(
                before, method, route, status
            )

        assert delta("GET", ITEM_ROUTE, "200") == 2
        assert delta("GET", UNMATCHED, "404") == 1
        assert delta("POST", "/items", "201") == 0
        observed = latency_count(after, "GET", ITEM_ROUTE) - latency_count(
            before, "GET", ITEM_ROUTE
        )
        assert observed == 2

        raw_paths = {f"/items/{item_id}" for item_id in ids} | {"/nope"}
        routes = Counter(s.labels["route"] for s in samples if "route" in s.labels)
        assert ITEM_ROUTE in routes
        assert UNMATCHED in routes
        assert not raw_paths & routes.keys(), sorted(routes)

        assert types["http_requests"] == "counter"
        assert types["http_request_duration_seconds"] == "histogram"
        buckets = [
            s
            for s in samples
            if s.name == "http_request_duration_seconds_bucket"
            and s.labels.get("route") == ITEM_ROUTE
            and s.labels.get("method") == "GET"
        ]
        assert buckets
        assert {s.labels["le"] for s in buckets} >= {"0.1", "+Inf"}

        assert types["db_pool_checked_out_connections"] == "gauge"
        checked_out = [s.value for s in samples if s.name == "db_pool_checked_out_connections"]
        assert checked_out
        assert all(value >= 0 for value in checked_out), checked_out
