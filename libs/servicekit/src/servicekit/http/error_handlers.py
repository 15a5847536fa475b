"""The problem+json answers of the app: errors mapped to HTTP in exactly one place.

Unexpected exceptions are not handled here: Starlette would answer them outside every
middleware (no request id header). :class:`servicekit.http.ChassisMiddleware` logs
them with the request id and answers :func:`internal_error_response`, without a trace, SQL
or secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.db.errors import database_error
from servicekit.errors import AppError
from servicekit.http.problem import code_for_status, problem_response, title
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import FastAPI, Request
    from starlette.responses import Response

log = get_logger("servicekit.errors")


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to what a client needs; input values are never echoed."""
    fields: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        fields.append(
            {
                "field": ".".join(
                    loc[1:]
                    if loc and loc[0] in {"body", "query", "path", "header", "cookie"}
                    else loc
                ),
                "location": loc[0] if loc else None,
                "message": err.get("msg", "invalid value"),
                "type": err.get("type", "value_error"),
            }
        )
    return fields


async def _app_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
    if exc.status_code >= 500:
        log.warning("request.failed", error=exc.code, detail=exc.detail)
    return problem_response(
        status=exc.status_code,
        code=exc.code,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else title(exc.status_code)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(
        status=exc.status_code,
        code=code_for_status(exc.status_code),
        detail=detail,
        instance=request.url.path,
        headers=headers,
    )


async def _database_error_handler(request: Request, exc: Exception) -> Response:
    problem = database_error(exc)
    if problem is None:
        raise exc  # a bug, not an outage: the last-resort 500 logs the traceback
    return await _app_error_handler(request, problem)


def _allowed_methods(request: Request) -> str:
    """Every method the path supports (RFC 9110 §15.5.6).

    Starlette names only the methods of the first route that matched the path, though several
    routes may share it.
    """
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers, flattened
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods.update(route.methods)
    return ", ".join(sorted(methods))


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return problem_response(
        status=422,
        code="validation_error",
        detail="The request is invalid; see `errors` for each field.",
        instance=request.url.path,
        extra={"errors": _field_errors(exc.errors())},
    )


def internal_error_response(path: str) -> Response:
    """The 500 answer for an unexpected exception: no trace, SQL or secret."""
    return problem_response(
        status=500,
        code="internal_error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
        instance=path,
    )


def cancelled_response(path: str) -> Response:
    """The answer for a request the server cancelled, past its drain timeout at shutdown.

    Its transaction was rolled back unless it had committed just before the cancellation,
    so the client is told the outcome is unknown: retry with an ``Idempotency-Key`` or
    read back. ``Connection: close``, as the server is going away.
    """
    return problem_response(
        status=503,
        code="request_cancelled",
        detail="The server shut down before this request finished; it may not have taken "
        "effect. Retry it (with the same Idempotency-Key, if any) on another instance.",
        instance=path,
        headers={"Retry-After": "1", "Connection": "close"},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error_handler)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error_handler)
