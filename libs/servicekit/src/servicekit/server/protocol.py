"""uvicorn's httptools protocol with the edge limits it lacks, answering in problem+json.

uvicorn bounds neither the header section nor the time a client may take to send it: 64 MiB
of headers are buffered, and a connection that sends half a request is held open for as
long as the client likes. This subclass adds, from :class:`ServerLimits`:

- ``max_header_bytes`` (request line and headers) and ``max_headers``: 431;
- ``header_timeout_s`` from the connection's (or the next request's) first byte, and before
  it, to the end of the headers: 408, then the connection is closed;
- ``body_timeout_s`` from the end of the headers to the end of the body: 408 if no response
  has started (the app sees a disconnect), else the connection is closed;
- ``max_in_flight`` requests per worker: past it, 503 ``overloaded`` with ``Retry-After: 1``
  before any task or app code runs (``/health/*`` and ``/metrics`` exempt); the connection
  stays open but is not read for that second.

Requests the parser refuses (``Content-Length: -1``, a NUL in a header) get uvicorn's 400,
but as problem+json with a request id instead of ``text/plain``. Only the answers the server
writes itself change: everything else is uvicorn's own code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from servicekit.http.problem import PROBLEM_CONTENT_TYPE, problem_body
from servicekit.http.request_log import request_id
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    import asyncio

    from uvicorn.config import Config
    from uvicorn.server import ServerState

log = get_logger(__name__)

#: Seconds a connection that was shed is not read from: the ``Retry-After`` it was sent.
SHED_HOLD_OFF_S = 1.0

#: The attribute of uvicorn's ``Config`` that carries the limits into every worker (the
#: config is pickled into spawned workers with it).
CONFIG_ATTRIBUTE = "servicekit_limits"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one connection may send, and how slowly."""

    max_header_bytes: int = 32_768
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_in_flight: int = 128


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    code: str
    detail: str


_INVALID = _Refusal(400, "invalid_http_request", "The request is not valid HTTP/1.1.")
_OVERLOADED = _Refusal(503, "overloaded", "The server is at capacity; retry after Retry-After.")


class _HeadersRefused(Exception):
    """Raised from a parser callback to stop parsing; the refusal is already recorded."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with header limits, read timeouts and problem+json 4xx."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ServerLimits = getattr(config, CONFIG_ATTRIBUTE, None) or ServerLimits()
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._header_line_bytes = 0
        self._refusal: _Refusal | None = None
        self._shedding = False
        self._resume_timer: asyncio.TimerHandle | None = None
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header clock: a connection must send its first request in time."""
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clocks with the connection."""
        self._disarm()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a header section that outgrows the limit."""
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # What the parser buffers of a head still incomplete: a single header line never
            # reaches a callback until it ends. A head complete within one read is measured
            # by the callbacks instead (``on_headers_complete``).
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(self._too_large("header section"))

    def on_message_begin(self) -> None:
        """A new request: its head gets a fresh budget and clock."""
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._header_count = self._header_line_bytes = 0
        self._arm(self.limits.header_timeout_s)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the headers and their bytes (each line: name, ": ", value, CRLF)."""
        self._header_count += 1
        self._header_line_bytes += len(name) + len(value) + 4
        if self._header_count > self.limits.max_headers:
            self._refusal = _Refusal(
                431, "too_many_headers", f"More than {self.limits.max_headers} headers."
            )
            raise _HeadersRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: refuse it if too large, shed it, or start it; the body clock starts."""
        # "METHOD URL HTTP/1.1" CRLF, the header lines, CRLF: as sent, up to optional spaces.
        request_line = len(self.parser.get_method()) + len(self.url) + 12
        head_bytes = request_line + self._header_line_bytes + 2
        if head_bytes > self.limits.max_header_bytes:
            self._refusal = self._too_large("header section")
            raise _HeadersRefused
        self._in_head = False
        self._arm(self.limits.body_timeout_s)
        if self._must_shed():
            # Answered at once, before any task or app code, and the connection kept: a
            # shed client that reconnects would queue in the accept backlog instead.
            self._shedding = True
            self._write_problem(_OVERLOADED, close=not self.parser.should_keep_alive())
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """The body of a started request (a shed one's is dropped)."""
        if not self._shedding:
            super().on_body(body)

    def _hold_off(self) -> None:
        """Read this connection's next request only after the ``Retry-After`` it was given.

        The 503 was immediate; a client that ignores ``Retry-After`` (a load generator, a
        retry loop) would otherwise spend the worker on refusals. Per connection, cheap (a
        timer), and bounded: at most one refusal per connection and second.
        """
        self.flow.pause_reading()

        def resume() -> None:
            self._resume_timer = None
            if not self.transport.is_closing():
                self.flow.resume_reading()
                self.timeout_keep_alive_task = self.loop.call_later(  # idle: keep-alive clock
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

        self._resume_timer = self.loop.call_later(SHED_HOLD_OFF_S, resume)

    def _must_shed(self) -> bool:
        limit = self.limits.max_in_flight
        if not limit or len(self.tasks) < limit:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a response still being written: keep the order
        path = httptools.parse_url(self.url).path
        return not path.startswith((b"/health/", b"/metrics"))

    def on_message_complete(self) -> None:
        """The whole request arrived in time."""
        self._disarm()
        if self._shedding:
            self._shedding = False
            if not self.transport.is_closing():
                self._hold_off()
            return
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 - uvicorn's plain text
        """Answer what the parser refused (uvicorn's 400) in problem+json."""
        refusal, self._refusal = self._refusal or _INVALID, None
        self._write_problem(refusal)

    def _too_large(self, what: str) -> _Refusal:
        return _Refusal(
            431, "headers_too_large", f"The {what} exceeds {self.limits.max_header_bytes} bytes."
        )

    def _refuse(self, refusal: _Refusal) -> None:
        self._disarm()
        self._write_problem(refusal)

    def _arm(self, timeout_s: float) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if not self._in_head and cycle is not None:
            if cycle.response_started:
                self.transport.close()
                return
            cycle.disconnected = True  # the app's receive() now reports a disconnect
            cycle.message_event.set()
        what = "headers" if self._in_head else "body"
        self._write_problem(
            _Refusal(408, "request_timeout", f"The request {what} did not arrive in time.")
        )

    def _write_problem(self, refusal: _Refusal, *, close: bool = True) -> None:
        """Answer ``refusal`` in problem+json; close unless the framing is still sound."""
        rid = request_id(None)
        body = orjson.dumps(
            problem_body(
                status=refusal.status,
                code=refusal.code,
                detail=refusal.detail,
                extra={"request_id": rid},
            )
        )
        if refusal is _OVERLOADED:
            metrics.http_shed().inc()  # counted, not logged: shedding must stay cheap
        else:
            log.warning(
                "http.request_refused", status=refusal.status, error=refusal.code, request_id=rid
            )
        head = [STATUS_LINE[refusal.status]]
        head.extend(
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        )
        head.append(
            b"content-type: %s\r\ncontent-length: %d\r\nx-request-id: %s\r\n"
            % (PROBLEM_CONTENT_TYPE.encode(), len(body), rid.encode())
        )
        if refusal is _OVERLOADED:
            head.append(b"retry-after: 1\r\n")
        head.append(b"connection: close\r\n\r\n" if close else b"\r\n")
        self.transport.write(b"".join(head) + body)
        if close:
            self.transport.close()
