"""The server's own answers: header limits, read timeouts and malformed framing, in problem+json.

A real uvicorn on a loopback port, spoken to over raw sockets: no HTTP client would send
these requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from servicekit.server import GuardedHttpToolsProtocol, ServerLimits
from servicekit.server.protocol import CONFIG_ATTRIBUTE
from servicekit.testing.process import free_port

pytestmark = pytest.mark.integration

LIMITS = ServerLimits(
    max_header_bytes=8192, max_headers=20, header_timeout_s=0.5, body_timeout_s=0.5
)


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"ok:%d" % len(body)
    headers = [(b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _echo, host="127.0.0.1", port=port, http=GuardedHttpToolsProtocol, lifespan="off",
        log_config=None,
    )  # fmt: skip
    setattr(config, CONFIG_ATTRIBUTE, LIMITS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task


async def _exchange(
    port: int, *chunks: bytes, pause_s: float = 0.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``chunks`` (pausing between them), read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def _assert_problem(
    status: int, headers: dict[str, str], body: bytes, expected: int, code: str
) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json"
    document = json.loads(body)
    assert document["error"] == code
    assert document["status"] == expected
    assert document["request_id"] == headers["x-request-id"]


class TestMalformedFraming:
    @pytest.mark.parametrize(
        "request_bytes",
        [
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        ],
        ids=["negative-content-length", "nul-in-header"],
    )
    async def test_is_a_problem_json_400(self, port: int, request_bytes: bytes) -> None:
        _assert_problem(*await _exchange(port, request_bytes), 400, "invalid_http_request")

    async def test_a_valid_request_still_works(self, port: int) -> None:
        status, _, body = await _exchange(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        )
        assert (status, body) == (200, b"ok:3")


class TestHeaderLimits:
    async def test_a_header_section_over_the_limit_is_431(self, port: int) -> None:
        # One endless header line: no parser callback fires before it ends.
        chunks = [b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "] + [b"a" * 4096] * 4
        _assert_problem(*await _exchange(port, *chunks), 431, "headers_too_large")

    async def test_too_many_headers_is_431(self, port: int) -> None:
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(25))
        request = b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
        _assert_problem(*await _exchange(port, request), 431, "too_many_headers")


class TestReadTimeouts:
    async def test_a_request_whose_headers_stall_gets_408(self, port: int) -> None:
        _assert_problem(
            *await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n"), 408, "request_timeout"
        )

    async def test_a_silent_connection_gets_408(self, port: int) -> None:
        _assert_problem(*await _exchange(port), 408, "request_timeout")

    async def test_a_body_that_stalls_gets_408(self, port: int) -> None:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        _assert_problem(*await _exchange(port, head), 408, "request_timeout")
