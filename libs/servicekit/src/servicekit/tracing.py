"""OpenTelemetry tracing for FastAPI, SQLAlchemy and Redis; off unless settings enable it.

The OpenTelemetry packages are imported only when tracing is on, so a service without the
``tracing`` extra pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.settings import ServiceSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


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


def instrument_backends(engine: AsyncEngine, provider: Any) -> None:
    """Client spans for SQL statements and Redis commands."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)
    redis = RedisInstrumentor()
    if not redis.is_instrumented_by_opentelemetry:
        redis.instrument(tracer_provider=provider)


def shutdown(provider: Any) -> None:
    """Remove the backend instrumentation and flush pending spans."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    provider.shutdown()
