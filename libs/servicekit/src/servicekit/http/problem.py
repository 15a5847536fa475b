"""RFC 9457 ``application/problem+json``: the one error shape, its documents and its schema."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from servicekit.context import current_request_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from servicekit.errors import AppError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:"


_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def code_for_status(status: int) -> str:
    """The default machine code for an HTTP status."""
    return _STATUS_CODES.get(status, "http_" + str(status))


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document with our ``error`` and ``request_id`` members."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title(status),
        "status": status,
        "detail": detail,
        "error": code,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A ready-to-send problem+json response."""
    body = problem_body(status=status, code=code, detail=detail, instance=instance, extra=extra)
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def title(status: int) -> str:
    """The status code's reason phrase."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*errors: type[AppError] | int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json errors.

    Pass error classes (their status and code are listed) or bare status codes.
    """
    by_status: dict[int, list[str]] = {}
    for error in errors:
        status = error if isinstance(error, int) else error.status_code
        codes = by_status.setdefault(status, [])
        codes.append(code_for_status(status) if isinstance(error, int) else error.code)
    return {
        status: {
            "description": f"{title(status)} (error: {', '.join(sorted(set(codes)))})",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, codes in by_status.items()
    }


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    location: str | None = None
    message: str
    type: str


class Problem(BaseModel):
    """``application/problem+json`` body; ``error`` is the stable machine code."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:problem-type:not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str
    instance: str | None = None
    error: str = Field(examples=["not_found"])
    request_id: str | None = None
    errors: list[FieldError] | None = None
