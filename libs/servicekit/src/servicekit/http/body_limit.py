"""Request bodies over a size limit: refused before reading, or aborted while streaming."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from servicekit.errors import PayloadTooLarge
from servicekit.http.problem import problem_response

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import Message, Receive


def _detail(max_bytes: int) -> str:
    return f"The request body exceeds {max_bytes} bytes."


def declared_too_large(content_length: bytes | None, max_bytes: int) -> bool:
    """Whether a declared ``Content-Length`` is over the limit.

    Malformed ones are the server's to reject: h11/httptools refuse them before the app sees
    the request.
    """
    if content_length is None:
        return False
    try:
        return int(content_length) > max_bytes
    except ValueError:
        return False


def too_large_response(max_bytes: int, path: str) -> Response:
    """413 problem+json; the connection is closed, the unread body with it."""
    return problem_response(
        status=PayloadTooLarge.status_code,
        code=PayloadTooLarge.code,
        detail=_detail(max_bytes),
        instance=path,
        headers={"connection": "close"},
    )


def limit_receive(receive: Receive, max_bytes: int) -> Receive:
    """``receive`` that counts body bytes as they stream and aborts past ``max_bytes``.

    It raises a 413 ``HTTPException``, which FastAPI re-raises from body parsing and the
    error handlers answer as problem+json.
    """
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise HTTPException(PayloadTooLarge.status_code, _detail(max_bytes))
        return message

    return limited_receive
