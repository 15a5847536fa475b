"""OpenTelemetry tracing for FastAPI, SQLAlchemy and Redis; off unless settings enable it.

The OpenTelemetry packages are imported only when tracing is on, so a service without the
``tracing`` extra pays nothing.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

    from servicekit.settings import ServiceSettings

# Apps instrumented per provider, so :func:`shutdown` can undo what :func:`instrument_app` did.
_instrumented_apps: weakref.WeakKeyDictionary[Any, weakref.WeakSet[FastAPI]] = (
    weakref.WeakKeyDictionary()
)


def create_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    """A tracer provider exporting over OTLP/HTTP in batches."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": settings.service_name,
                "deployment.environment": settings.environment.value,
            }
        ),
        sampler=ParentBasedTraceIdRatio(settings.tracing.sample_ratio),
    )
    exporter = (
        OTLPSpanExporter(endpoint=settings.tracing.otlp_endpoint)
        if settings.tracing.otlp_endpoint
        else OTLPSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument_app(app: FastAPI, provider: Any) -> None:
    """Server spans for every request (excluding health and metrics scrapes)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health/live,health/ready,metrics"
    )
    _instrumented_apps.setdefault(provider, weakref.WeakSet()).add(app)


def instrument_backends(engine: AsyncEngine, provider: Any) -> None:
    """Client spans for SQL statements and Redis commands."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation pins ``sqlalchemy < 2.1`` and, when the installed version is newer,
    # logs an error and instruments nothing. It only relies on engine and pool events that
    # SQLAlchemy 2.1 keeps (tests/test_tracing.py checks the SQL spans), so skip the check.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    redis = RedisInstrumentor()
    if not redis.is_instrumented_by_opentelemetry:
        redis.instrument(tracer_provider=provider, request_hook=_mark_cluster_span)


def _mark_cluster_span(span: Any, instance: Any, _args: Any, _kwargs: Any) -> None:
    """Say ``db.system=redis`` on cluster client spans too.

    The instrumentation reads it (and the server address) from a connection pool, which the
    cluster client does not have.
    """
    if span.is_recording() and not hasattr(instance, "connection_pool"):
        span.set_attribute("db.system", "redis")


def shutdown(provider: Any) -> None:
    """Remove the app and backend instrumentation and flush pending spans.

    The app's own instrumentation goes too: besides wrapping the app, it patches Starlette's
    ``BackgroundTask`` process-wide with this provider's tracer, which would otherwise keep
    tracing (and stamping trace ids on the logs of) background tasks of every later app.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    for app in list(_instrumented_apps.pop(provider, ())):
        FastAPIInstrumentor.uninstrument_app(app)
    SQLAlchemyInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span in progress, if one is (for an event's envelope)."""
    try:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:  # pragma: no cover - tracing extra not installed
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)  # writes nothing without a valid span
    return carrier.get("traceparent")


@contextlib.contextmanager
def consumer_span(
    provider: Any, name: str, traceparent: str | None, attributes: Mapping[str, str]
) -> Iterator[None]:
    """A consumer span continuing the trace of ``traceparent``; nothing without a provider."""
    if provider is None:
        yield
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if traceparent
        else None
    )
    tracer = provider.get_tracer("servicekit.events")
    with tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=dict(attributes)
    ):
        yield
