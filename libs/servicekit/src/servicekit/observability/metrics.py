"""Prometheus metrics, correct with several worker processes.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the ``serve`` command sets it for its workers),
prometheus-client stores samples in per-process files and ``/metrics`` aggregates them with
a ``MultiProcessCollector``; otherwise the default in-process registry is used. Metric
objects are created on first use (never at import time) and shared through a cache, so a
feature calls :func:`counter` wherever it needs one.
"""

from __future__ import annotations

import hmac
import os
from functools import cache

from fastapi import APIRouter, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from starlette.responses import Response

from servicekit.errors import AppError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """prometheus-client's multiprocess directory, when multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@cache
def counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    """A process-wide counter, created once."""
    return Counter(name, documentation, labels)


@cache
def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
    """A process-wide gauge summed over live worker processes."""
    return Gauge(name, documentation, labels, multiprocess_mode="livesum")


@cache
def histogram(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Histogram:
    """A process-wide latency histogram with the shared buckets."""
    return Histogram(name, documentation, labels, buckets=LATENCY_BUCKETS)


def http_requests() -> Counter:
    """Requests served, by method, route template and status."""
    return counter("http_requests_total", "HTTP requests served.", ("method", "route", "status"))


def http_latency() -> Histogram:
    """Request latency, by method and route template."""
    return histogram("http_request_duration_seconds", "HTTP request latency.", ("method", "route"))


@cache
def _http_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # labels() validates and looks up its arguments on every call; the series of one
    # (method, route, status) are resolved once. Routes are templates, so this stays small.
    return (
        http_requests().labels(method, route, str(status)),
        http_latency().labels(method, route),
    )


def http_request_served(method: str, route: str, status: int, duration_s: float) -> None:
    """Count one served request and observe its latency."""
    served, latency = _http_series(method, route, status)
    served.inc()
    latency.observe(duration_s)


def http_in_flight() -> Gauge:
    """Requests being served right now."""
    return gauge("http_requests_in_flight", "HTTP requests in flight.")


def http_shed() -> Counter:
    """Requests answered 503 ``overloaded`` because the process was at ``max_in_flight``."""
    return counter("http_requests_shed_total", "HTTP requests shed at the in-flight bound.")


def db_pool_checked_out() -> Gauge:
    """Database connections currently checked out of the pool."""
    return gauge("db_pool_checked_out_connections", "DB connections checked out of the pool.")


def db_slow_queries() -> Counter:
    """Statements slower than the configured threshold."""
    return counter("db_slow_queries_total", "SQL statements slower than the threshold.")


def cache_events() -> Counter:
    """Cache hits, misses and errors, by cache name."""
    return counter("cache_events_total", "Cache lookups by result.", ("cache", "result"))


def redis_errors() -> Counter:
    """Redis operations that failed and were degraded, by operation and outcome."""
    return counter(
        "redis_errors_total", "Redis errors by operation and outcome.", ("operation", "outcome")
    )


def rate_limit_rejections() -> Counter:
    """Requests rejected by a rate-limit rule."""
    return counter("rate_limit_rejections_total", "Requests rejected by a rate limit.", ("rule",))


def auth_failures() -> Counter:
    """Failed authentication attempts, by reason."""
    return counter("auth_failures_total", "Failed authentication attempts.", ("reason",))


@cache
def _gauge_max(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
    # Every process observes the same shared state (an outbox, a stream): report the largest
    # value, not the sum over workers.
    return Gauge(name, documentation, labels, multiprocess_mode="livemax")


def redis_circuit_state() -> Gauge:
    """The Redis circuit breaker: 0 closed, 1 half-open, 2 open (the worst worker's)."""
    return _gauge_max("redis_circuit_state", "Redis circuit: 0 closed, 1 half-open, 2 open.")


def redis_circuit_opened() -> Counter:
    """Times the Redis circuit opened after repeated failures."""
    return counter("redis_circuit_opened_total", "Times the Redis circuit opened.")


def redis_circuit_rejections() -> Counter:
    """Redis calls refused without calling the server while the circuit was open."""
    return counter("redis_circuit_rejections_total", "Redis calls refused by the open circuit.")


def outbox_backlog() -> Gauge:
    """Outbox rows not yet published."""
    return _gauge_max("events_outbox_backlog", "Outbox rows not yet published.")


def outbox_oldest_age() -> Gauge:
    """Age in seconds of the oldest unpublished outbox row (0 when none)."""
    return _gauge_max(
        "events_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row."
    )


def events_published() -> Counter:
    """Events the relay appended to a stream, by type."""
    return counter("events_published_total", "Events published to a stream.", ("type",))


def events_consumed() -> Counter:
    """Events a consumer group finished with, by group, type and outcome.

    Outcomes: ``handled``, ``dead`` (moved to the dead-letter stream) and ``failed`` (one
    failed attempt of a handler, retried or dead-lettered after).
    """
    return counter(
        "events_consumed_total", "Events consumed, by outcome.", ("group", "type", "outcome")
    )


def consumer_lag() -> Gauge:
    """Entries of a stream not yet delivered to a consumer group."""
    return _gauge_max(
        "events_consumer_lag", "Stream entries not yet read by the group.", ("group", "stream")
    )


def consumer_pending() -> Gauge:
    """Entries delivered to a consumer group and not yet acknowledged."""
    return _gauge_max(
        "events_consumer_pending", "Entries read and not acknowledged.", ("group", "stream")
    )


def dead_letters() -> Gauge:
    """Entries in a consumer group's dead-letter stream."""
    return _gauge_max("events_dead_letters", "Entries in the dead-letter stream.", ("group",))


def render_latest() -> tuple[bytes, str]:
    """The exposition text of every metric (aggregated over workers in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_router(token: str | None = None) -> APIRouter:
    """``GET /metrics`` in the Prometheus text format; with ``token``, for its bearer only."""
    router = APIRouter()
    expected = f"Bearer {token}".encode() if token else None

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise MetricsUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        payload, content_type = render_latest()
        return Response(payload, media_type=content_type)

    return router


class MetricsUnauthorized(AppError):
    """``/metrics`` without its bearer token."""

    status_code = 401
    code = "not_authenticated"
    message = "Metrics need the configured bearer token."
