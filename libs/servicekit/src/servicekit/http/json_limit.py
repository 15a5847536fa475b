"""JSON request bodies nested deeper than a limit, refused before any parser recurses.

Python's ``json`` recurses once per nesting level: a 4 KB body of 2,000 brackets raises
``RecursionError`` in whatever parses it (FastAPI's body reader, an endpoint reading the body
itself), and the traceback of a thousand frames is slow to log. The chassis therefore reads a
JSON body before the app does, parses it with orjson (a non-recursive parser with its own
depth cap of 1,024, so the check itself is bounded) and answers 400 ``json_too_deep`` past
``http.max_json_depth``. The body is replayed to the app unchanged; size is bounded by the
body limit, which applies while the body is buffered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect

from servicekit.http.problem import problem_response

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import Message, Receive

#: orjson's message when its own depth cap is hit.
_ORJSON_DEPTH_ERROR = "depth limit exceeded"


def is_json(content_type: bytes | None) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json`` or ``application/*+json``)."""
    if not content_type:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def nested_deeper_than(body: bytes, max_depth: int) -> bool:
    """Whether ``body`` holds arrays or objects nested more than ``max_depth`` levels.

    ``{}`` is one level, ``{"a": [1]}`` two. A body that is not JSON at all is not too deep:
    its parser reports it.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return str(exc).startswith(_ORJSON_DEPTH_ERROR)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


async def buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body; return it and a ``receive`` that hands it to the app again.

    Raises:
        ClientDisconnect: the client went away before the body was complete.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()  # what follows the body: a disconnect
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def too_deep_response(max_depth: int, path: str) -> Response:
    """400 problem+json for a JSON body nested past the limit."""
    return problem_response(
        status=400,
        code="json_too_deep",
        detail=f"The JSON body is nested more than {max_depth} levels deep.",
        instance=path,
    )
