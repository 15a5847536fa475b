"""structlog configuration: JSON in production, readable console in development.

Standard-library loggers (uvicorn, SQLAlchemy, alembic) are routed through the same
processor chain, so every line — ours or a library's — carries the request id, the user id
once known, and the trace id when tracing is on.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import TYPE_CHECKING, Any

import structlog

from servicekit.context import request_id_var, user_id_var

if TYPE_CHECKING:
    from structlog.types import EventDict, Processor, WrappedLogger

    from servicekit.settings import ServiceSettings


def _add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Attach the current OpenTelemetry trace/span ids when a span is recording."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - tracing extra not installed
        return event_dict
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test capture, redirected stderr)."""

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``; assigning a stream changes nothing."""
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _add_request_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The request id and user id of the request being served, read at log time.

    They are read from the chassis' context variables: binding them into structlog's context
    on every request cost more than all the lines a request usually logs.
    """
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    user_id = user_id_var.get()
    if user_id is not None:
        event_dict.setdefault("user_id", str(user_id))
    return event_dict


# Read at log time, so loggers cached before a reconfiguration still name the service.
_service_name = {"value": "service"}


def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _service_name["value"])
    event_dict.pop("color_message", None)  # uvicorn's ANSI duplicate of the message
    return event_dict


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    _add_request_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_service,
    _add_trace_ids,
]


def configure_logging(settings: ServiceSettings) -> None:
    """Configure structlog and the standard library; idempotent, call it from start-up.

    The structlog chain is the same in every mode (loggers cache it on first use); only
    the final formatter differs: JSON with rendered tracebacks, or the console renderer.
    """
    _service_name["value"] = settings.service_name
    final: list[Processor]
    if settings.json_logs:
        final = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        final = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    shared = SHARED_PROCESSORS

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    level = settings.logging.level.upper()
    formatter: dict[str, Any] = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": shared,
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"structlog": formatter},
            "handlers": {"default": {"()": StderrHandler, "formatter": "structlog"}},
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                # uvicorn's own handlers are replaced so its lines share our format.
                "uvicorn": {"handlers": [], "propagate": True, "level": level},
                "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
                # Our middleware writes the access log (with request id and query count).
                "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
                "sqlalchemy.engine": {
                    "level": "INFO" if settings.database.echo else "WARNING",
                },
            },
        }
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind request-scoped values with ``structlog.contextvars``."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
