"""Reject request bodies over a size limit with 413 problem+json."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PayloadTooLarge, problem_response


class BodySizeLimitMiddleware:
    """Refuse bodies larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before the body is read; a
    chunked body is counted as it streams and aborted with a 413 ``HTTPException`` (FastAPI
    re-raises those from body parsing; the error handlers answer problem+json) as soon as
    it crosses the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # h11/httptools reject malformed lengths before us
            if too_large:
                response = problem_response(
                    status=PayloadTooLarge.status_code,
                    code=PayloadTooLarge.code,
                    detail=f"The request body exceeds {self.max_bytes} bytes.",
                    instance=scope.get("path"),
                    headers={"connection": "close"},
                )
                await response(scope, receive, send)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(
                        PayloadTooLarge.status_code,
                        f"The request body exceeds {self.max_bytes} bytes.",
                    )
            return message

        await self.app(scope, limited_receive, send)
