"""Structured logs, Prometheus metrics and (optional) OpenTelemetry tracing."""

from servicekit.observability import metrics
from servicekit.observability.logging import configure_logging, get_logger

__all__ = ["configure_logging", "get_logger", "metrics"]
