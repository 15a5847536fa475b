"""A TCP proxy a test controls, to make a dependency unreachable and bring it back.

The service under test connects to the proxy instead of the server. :meth:`TcpProxy.cut`
drops every open connection and stops listening, so connects are refused at once (what a
crashed server or a restarted cluster looks like); :meth:`TcpProxy.stall` keeps every
connection open but forwards nothing (a network partition: no error, no answer);
:meth:`TcpProxy.restore` ends either, listening again on the same port. The proxy runs its
own event loop in a background thread, so blocking test code (subprocess waits,
``time.sleep``) never stalls the traffic it forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from servicekit.testing.process import free_port

T = TypeVar("T")
_CHUNK = 65_536
_CONTROL_TIMEOUT_S = 10.0


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` both ways."""

    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port or free_port()
        #: Connections accepted since start (a cut proxy accepts none).
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._flowing: asyncio.Event | None = None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> Self:
        """Start the loop thread and listen."""
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        self._call(self._cut())

    def stall(self) -> None:
        """Forward nothing, either way, on open and new connections until :meth:`restore`."""
        self._call(self._set_flowing(False))

    def restore(self) -> None:
        """Accept and forward connections again, on the same port."""
        self._call(self._listen())
        self._call(self._set_flowing(True))

    def stop(self) -> None:
        """Cut, then stop the loop thread; safe to repeat."""
        if not self._thread.is_alive():
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_CONTROL_TIMEOUT_S)
        self._loop.close()

    def url_for(self, url: str) -> str:
        """``url`` (``scheme://user:pass@host:port/…``) pointed at this proxy instead."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def open_connections(self) -> int:
        """Client connections currently forwarded."""
        return len(self._links)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CONTROL_TIMEOUT_S)

    # ------------------------------------------------------------------ the loop thread
    def _flow(self) -> asyncio.Event:
        if self._flowing is None:  # created in the loop thread, where it is awaited
            self._flowing = asyncio.Event()
            self._flowing.set()
        return self._flowing

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flow().set()
        else:
            self._flow().clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client, upstream in list(self._links):
            # abort(): an RST, not a polite FIN: the peer learns at once, mid-query or not.
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._flow().wait()
        try:
            upstream_r, upstream_w = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), _CONTROL_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            client_w.transport.abort()
            return
        link = (client_w, upstream_w)
        self._links.add(link)
        pumps = [
            asyncio.create_task(_pump(client_r, upstream_w, self._flow())),
            asyncio.create_task(_pump(upstream_r, client_w, self._flow())),
        ]
        try:
            # Either side closing ends the link: the protocols proxied here never half-close.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self._links.discard(link)
            client_w.transport.abort()
            upstream_w.transport.abort()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            await flowing.wait()  # stalled: hold the bytes, as a partition would
            writer.write(data)
            await writer.drain()
