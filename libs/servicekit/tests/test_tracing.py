"""OpenTelemetry: one request traced through HTTP, SQL and Redis, logs carrying its trace id.

Also, nothing is left instrumented once the app has stopped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, BackgroundTasks, Depends
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.background import BackgroundTask

from servicekit.app import create_app
from servicekit.deps import DbSession, RedisClient, get_app_settings
from servicekit.observability.logging import configure_logging, get_logger
from servicekit.redis import AnyRedis, KeySpace
from servicekit.settings import LoggingSettings, ServiceSettings
from servicekit.testing import app_client

from .utils.items import Item, items_router

pytestmark = pytest.mark.integration

log = get_logger("tests.tracing")

SQL_SYSTEMS = frozenset({"postgresql", "sqlite"})


def probe_router() -> APIRouter:
    """One endpoint touching the database and Redis, logging inside and after the request."""
    router = APIRouter(prefix="/probe")

    async def after_response(name: str) -> None:
        log.info("probe.background", name=name)

    @router.post("/{name}", status_code=201)
    async def probe(
        name: str,
        session: DbSession,
        redis: RedisClient,
        settings: Annotated[ServiceSettings, Depends(get_app_settings)],
        background: BackgroundTasks,
    ) -> dict[str, int]:
        row = Item(name=name)
        session.add(row)
        await session.flush()
        await redis.set(KeySpace.of(settings).key("probe", name), str(row.id), ex=60)
        log.info("probe.handled", item_id=row.id)
        background.add_task(after_response, name)
        return {"id": row.id}

    return router


class KeepsRecordingExporter(InMemorySpanExporter):
    """Keeps collecting after the provider is shut down.

    ``InMemorySpanExporter`` drops everything once stopped, which would hide instrumentation
    that outlived the app (still creating spans with the dead provider's tracer).
    """

    def shutdown(self) -> None:
        pass


@dataclass
class TracedRequest:
    exporter: KeepsRecordingExporter
    spans: tuple[ReadableSpan, ...]
    logs: list[dict[str, Any]]
    name: str


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of captured stderr (anything else is skipped)."""
    lines: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                lines.append(parsed)
    return lines


def one(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def trace_id_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def bounds(span: ReadableSpan) -> tuple[int, int]:
    """Start and end time of a finished span, in nanoseconds."""
    assert span.start_time is not None
    assert span.end_time is not None
    return span.start_time, span.end_time


@pytest.fixture
def json_settings(test_settings: ServiceSettings) -> ServiceSettings:
    return test_settings.model_copy(update={"logging": LoggingSettings(json_format=True)})


@pytest.fixture
def restore_logging(test_settings: ServiceSettings) -> Iterator[None]:
    """Put the session's (console) logging back after a test switched to JSON."""
    yield
    configure_logging(test_settings)


@pytest.fixture
async def traced(
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
    json_settings: ServiceSettings,
    kit_tables: None,
    redis_client: AnyRedis,  # deletes the probe's keys afterwards
) -> TracedRequest:
    """Run a traced app through its whole lifespan around one ``POST /probe/{name}``."""
    exporter = KeepsRecordingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(json_settings, [items_router(), probe_router()], tracer_provider=provider)
    name = f"traced-{uuid.uuid4().hex[:12]}"
    capsys.readouterr()
    async with app_client(app) as client:
        response = await client.post(f"/probe/{name}")
        assert response.status_code == 201, response.text
    return TracedRequest(
        exporter=exporter,
        spans=exporter.get_finished_spans(),
        logs=json_lines(capsys.readouterr().err),
        name=name,
    )


class TestTracing:
    async def test_one_request_spans_http_sql_and_redis(self, traced: TracedRequest) -> None:
        servers = [s for s in traced.spans if s.kind is SpanKind.SERVER]
        assert len(servers) == 1, [s.name for s in traced.spans]
        server = servers[0]
        assert server.attributes is not None
        assert server.attributes.get("http.route") == "/probe/{name}"
        same_trace = [s for s in traced.spans if trace_id_of(s) == trace_id_of(server)]
        assert len(same_trace) == len(traced.spans)

        attrs = [dict(s.attributes or {}) for s in same_trace]
        sql = [
            s for s, a in zip(same_trace, attrs, strict=True) if a.get("db.system") in SQL_SYSTEMS
        ]
        redis = [s for s, a in zip(same_trace, attrs, strict=True) if a.get("db.system") == "redis"]
        assert sql, [s.name for s in same_trace]
        assert redis, [s.name for s in same_trace]
        server_start, server_end = bounds(server)
        for span in (*sql, *redis):
            assert span.kind is SpanKind.CLIENT
            start, end = bounds(span)
            assert server_start <= start <= end <= server_end
        assert any("INSERT" in s.name for s in sql), [s.name for s in sql]
        assert any(s.name == "SET" for s in redis), [s.name for s in redis]

    async def test_log_lines_carry_the_trace_id(self, traced: TracedRequest) -> None:
        server = next(s for s in traced.spans if s.kind is SpanKind.SERVER)
        assert server.context is not None
        trace_id = format(server.context.trace_id, "032x")

        handled = one([line for line in traced.logs if line.get("event") == "probe.handled"])
        assert handled["trace_id"] == trace_id
        assert handled["span_id"] == format(server.context.span_id, "016x")
        background = one([line for line in traced.logs if line.get("event") == "probe.background"])
        assert background["trace_id"] == trace_id
        access = one(
            [
                line
                for line in traced.logs
                if line.get("event") == "http.request"
                and line.get("path") == f"/probe/{traced.name}"
            ]
        )
        assert access["trace_id"] == trace_id
        assert access["request_id"] == handled["request_id"]
        # Outside the request there is no span, so no trace id.
        started = one([line for line in traced.logs if line.get("event") == "app.started"])
        assert "trace_id" not in started

    async def test_instrumentation_is_removed_at_shutdown(
        self,
        traced: TracedRequest,
        capsys: pytest.CaptureFixture[str],
        json_settings: ServiceSettings,
    ) -> None:
        assert traced.spans
        assert not RedisInstrumentor().is_instrumented_by_opentelemetry
        assert not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
        assert not hasattr(BackgroundTask, "_otel_original_call")

        traced.exporter.clear()
        app = create_app(json_settings, [items_router(), probe_router()])
        name = f"untraced-{uuid.uuid4().hex[:12]}"
        capsys.readouterr()
        async with app_client(app) as client:
            response = await client.post(f"/probe/{name}")
            assert response.status_code == 201, response.text
            assert (await client.post("/items", json={"name": f"{name}-item"})).status_code == 201

        assert traced.exporter.get_finished_spans() == ()
        logs = json_lines(capsys.readouterr().err)
        assert one([line for line in logs if line.get("event") == "probe.handled"])
        assert one([line for line in logs if line.get("event") == "probe.background"])
        assert not [line for line in logs if "trace_id" in line or "span_id" in line]
