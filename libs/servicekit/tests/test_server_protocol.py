"""The server's own answers: header limits, read timeouts and malformed framing, in problem+json.

A real uvicorn on a loopback port, spoken to over raw sockets: no HTTP client would send
these requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.server import GuardedHttpToolsProtocol, ServerLimits
from servicekit.server.protocol import CONFIG_ATTRIBUTE
from servicekit.testing.process import free_port

pytestmark = pytest.mark.integration

LIMITS = ServerLimits(
    max_header_bytes=8192, max_headers=20, header_timeout_s=0.5, body_timeout_s=0.5, max_in_flight=1
)


def _echo(hold: asyncio.Event) -> ASGIApp:
    """Answers ``ok:<body length>``; ``/hold`` only once ``hold`` is set."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/hold":
            await hold.wait()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await _answer(send, b"ok:%d" % len(body))

    return app


async def _answer(send: Send, answer: bytes) -> None:
    headers = [(b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def hold() -> asyncio.Event:
    """Requests to ``/hold`` wait for this."""
    return asyncio.Event()


@pytest.fixture
async def port(hold: asyncio.Event) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _echo(hold), host="127.0.0.1", port=port, http=GuardedHttpToolsProtocol, lifespan="off",
        log_config=None,
    )  # fmt: skip
    setattr(config, CONFIG_ATTRIBUTE, LIMITS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    yield port
    hold.set()
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

    @pytest.mark.parametrize("size", [9000, 64 * 1024], ids=["just-over", "64KiB"])
    async def test_a_header_section_over_the_limit_in_one_write_is_431(
        self, port: int, size: int
    ) -> None:
        # The whole head arrives in one read: the parser completes it before any byte count.
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
        _assert_problem(*await _exchange(port, request), 431, "headers_too_large")

    async def test_a_header_section_of_exactly_the_limit_is_served(self, port: int) -> None:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
        fill = LIMITS.max_header_bytes - len(head) - 4
        request = head + b"a" * fill + b"\r\n\r\n"
        assert len(request) == LIMITS.max_header_bytes
        status, _, body = await _exchange(port, request)
        assert (status, body) == (200, b"ok:0")
        over = head + b"a" * (fill + 1) + b"\r\n\r\n"
        _assert_problem(*await _exchange(port, over), 431, "headers_too_large")

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


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


class TestLoadShedding:
    async def test_beyond_max_in_flight_a_request_gets_an_immediate_503_and_a_hold_off(
        self, port: int, hold: asyncio.Event
    ) -> None:
        held_reader, held_writer = await asyncio.open_connection("127.0.0.1", port)
        held_writer.write(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.1)  # the one slot is taken
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            started = time.monotonic()
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = await _read_response(reader)
            assert time.monotonic() - started < 0.5  # immediate
            _assert_problem(status, headers, body, 503, "overloaded")
            assert headers["retry-after"] == "1"
            assert "connection" not in headers  # kept alive: no reconnect storm
            # Probes and metrics are never shed.
            status, _, _ = await _exchange(
                port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert status == 200
            # The shed connection is read again only after its Retry-After.
            hold.set()
            assert (await _read_response(held_reader))[0] == 200
            started = time.monotonic()
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = await _read_response(reader)
            assert (status, body) == (200, b"ok:0")
            assert time.monotonic() - started > 0.5
        finally:
            writer.close()
            held_writer.close()
