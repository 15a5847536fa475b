"""The probes of ``bench/server_limits.py``: hostile HTTP/1.1 requests on raw loopback sockets.

Each probe uses connections of its own and waits ``cap_s`` at most; :func:`probe` runs them
all against one :class:`Target` and returns one :class:`Row` per probe (the list is in the
script's docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

HEAD_PATH = "/health/live"
BODY_PATH = "/api/v1/auth/login"
SHED_PATH = "/api/v1/users/me"
CAP_S = 40.0
BURST = 1024
BURST_ROUNDS = 3
#: Stalled bodies of ``held_bodies``: ``server.max_in_flight`` and granian's ``--backpressure``.
HELD = 128
CHUNK = 65_536
#: Bytes of each answer kept (enough for its head and a problem document).
KEEP = 16_384
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """The server under test: a loopback address and the processes whose memory is read."""

    host: str
    port: int
    pids: tuple[int, ...] = ()

    @property
    def authority(self) -> str:
        """The ``Host`` header of every probe."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(slots=True)
class Answer:
    """What one connection got back: the answer's status and type, and how it ended."""

    status: int | None = None
    content_type: str | None = None
    answered_s: float | None = None  # first byte of the answer, from the connection's start
    ended: str = "held"  # closed, reset or held (still open at the cap)
    ended_s: float | None = None
    sent_bytes: int = 0  # accepted by the socket, not necessarily read by the server
    raw: bytes = b""

    def parse(self) -> None:
        """Status and ``Content-Type`` from the kept bytes."""
        head = self.raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        status_line, *lines = head.split("\r\n")
        parts = status_line.split()
        if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
            self.status = int(parts[1])
        for line in lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                self.content_type = value.strip()


@dataclass(slots=True)
class Row:
    """One probe's outcome, as the table shows it and the JSON keeps it."""

    probe: str
    answer: str
    connection: str
    rss_growth_mib: float | None = None
    hwm_growth_mib: float | None = None
    detail: dict[str, Any] | None = None

    def cell(self) -> str:
        """The table cell: answer, connection, memory growth."""
        parts = [self.answer, self.connection]
        if self.rss_growth_mib is not None:
            parts.append(f"RSS {self.rss_growth_mib:+.1f} MiB (peak {self.hwm_growth_mib:+.1f})")
        return "; ".join(part for part in parts if part)


# ------------------------------------------------------------------------------ probes


def _memory_kib(pids: Sequence[int]) -> tuple[int, int]:
    """``VmRSS`` and ``VmHWM`` summed over ``pids``, in KiB (0 for a process gone)."""
    rss = hwm = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


async def _connect(target: Target) -> socket.socket:
    """A non-blocking socket connected to ``target`` (10 s at most).

    Raw sockets, not streams: a stream transport that fails to send (the server closed on a
    request still being sent) drops what it had not read yet, the answer included.
    """
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (target.host, target.port)), timeout=10)
    except BaseException:
        sock.close()
        raise
    return sock


async def _read_all(sock: socket.socket, answer: Answer, started: float) -> None:
    """Read until the server closes, keeping the first :data:`KEEP` bytes."""
    loop = asyncio.get_running_loop()
    try:
        while data := await loop.sock_recv(sock, CHUNK):
            if answer.answered_s is None:
                answer.answered_s = time.monotonic() - started
            if len(answer.raw) < KEEP:
                answer.raw += data[: KEEP - len(answer.raw)]
        answer.ended = "closed"
    except OSError:
        answer.ended = "reset"
    answer.ended_s = time.monotonic() - started


async def exchange(target: Target, chunks: Iterator[bytes], cap_s: float) -> Answer:
    """Send ``chunks`` while reading the answer, until the server closes or ``cap_s``."""
    answer = Answer()
    started = time.monotonic()
    try:
        sock = await _connect(target)
    except (OSError, TimeoutError) as exc:
        answer.ended = f"no connection ({type(exc).__name__})"
        return answer
    loop = asyncio.get_running_loop()

    async def send() -> None:
        with contextlib.suppress(OSError):  # refused mid-request: the reader sees the rest
            for chunk in chunks:
                await loop.sock_sendall(sock, chunk)
                answer.sent_bytes += len(chunk)

    sender = asyncio.create_task(send())
    try:
        await asyncio.wait_for(_read_all(sock, answer, started), timeout=cap_s)
    except TimeoutError:
        answer.ended = "held"
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        sock.close()
    answer.parse()
    return answer


def _describe(answer: Answer, *, cap_s: float, idle: bool = False) -> tuple[str, str]:
    """The answer (``431 application/problem+json``) and how the connection ended."""
    if answer.status is not None:
        what = f"{answer.status} {answer.content_type or '(no content-type)'}"
        if not idle and answer.answered_s is not None:
            what += f" at {answer.answered_s:.1f} s"
    else:
        what = "no answer"
    if answer.ended == "held":
        return what, f"held at the {cap_s:.0f} s cap"
    if answer.ended_s is None:
        return what, answer.ended
    since = answer.answered_s if idle and answer.answered_s is not None else 0.0
    return what, f"{answer.ended} after {answer.ended_s - since:.1f} s"


def _header_flood(target: Target, size: int) -> Iterator[bytes]:
    """A complete request with one header line of ``size`` bytes."""
    yield (
        f"GET {HEAD_PATH} HTTP/1.1\r\nHost: {target.authority}\r\nConnection: close\r\nX-Big: "
    ).encode()
    left = size
    while left > 0:
        yield b"a" * min(CHUNK, left)
        left -= CHUNK
    yield b"\r\n\r\n"


async def _measured(
    name: str, target: Target, chunks: Iterator[bytes], cap_s: float, *, idle: bool = False
) -> Row:
    """One exchange, with the memory of the server's processes before and after."""
    rss_before, hwm_before = _memory_kib(target.pids)
    answer = await exchange(target, chunks, cap_s)
    await asyncio.sleep(0.2)  # the server drops what it buffered
    rss_after, hwm_after = _memory_kib(target.pids)
    what, connection = _describe(answer, cap_s=cap_s, idle=idle)
    row = Row(name, what, connection, detail={**asdict(answer), "raw": None})
    if target.pids:
        row.rss_growth_mib = round((rss_after - rss_before) / 1024, 1)
        row.hwm_growth_mib = round((hwm_after - hwm_before) / 1024, 1)
        row.detail = {**(row.detail or {}), "rss_kib": [rss_before, rss_after]}
        row.detail["hwm_kib"] = [hwm_before, hwm_after]
    return row


def _once(data: bytes) -> Iterator[bytes]:
    yield data


async def _silent_probes(target: Target, cap_s: float) -> list[Row]:
    """Slowloris, a half-sent body and an idle keep-alive connection, side by side."""
    host = target.authority
    slowloris = f"GET {HEAD_PATH} HTTP/1.1\r\nHost: {host}\r\n".encode()
    half_body = (
        f"POST {BODY_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f'Content-Length: 1000\r\n\r\n{{"email": "{"a" * 480}'
    ).encode()
    keep_alive = f"GET {HEAD_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    rows = await asyncio.gather(
        _measured("slowloris", target, _once(slowloris), cap_s),
        _measured("half_body", target, _once(half_body), cap_s),
        _measured("idle_keep_alive", target, _once(keep_alive), cap_s, idle=True),
    )
    for row in rows:  # side by side: the memory of one is not its own
        row.rss_growth_mib = row.hwm_growth_mib = None
    return list(rows)


async def _burst_round(target: Target, n: int, cap_s: float) -> tuple[Counter[str], list[float]]:
    """``n`` connections, then one request on each at once: statuses, answer times."""
    request = (
        f"GET {SHED_PATH} HTTP/1.1\r\nHost: {target.authority}\r\nConnection: close\r\n\r\n"
    ).encode()
    opened = await asyncio.gather(*(_connect(target) for _ in range(n)), return_exceptions=True)
    connections = [sock for sock in opened if isinstance(sock, socket.socket)]
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    async def one(sock: socket.socket) -> Answer:
        answer = Answer()
        try:
            await loop.sock_sendall(sock, request)
            await asyncio.wait_for(_read_all(sock, answer, started), timeout=cap_s)
        except TimeoutError:
            answer.ended = "held"
        except OSError:
            answer.ended = "reset"
        finally:
            sock.close()
        answer.parse()
        return answer

    def label(answer: Answer) -> str:
        if answer.status is None:
            return f"no answer ({answer.ended})"
        if answer.status == 503 and b"\r\nretry-after:" in answer.raw.lower():
            return "503+Retry-After"
        return str(answer.status)

    answers = await asyncio.gather(*(one(sock) for sock in connections))
    statuses = Counter(label(answer) for answer in answers)
    statuses["no connection"] += n - len(connections)
    return statuses, sorted(a.answered_s for a in answers if a.answered_s is not None)


async def _burst(target: Target, n: int, cap_s: float, rounds: int = BURST_ROUNDS) -> Row:
    """:func:`_burst_round` ``rounds`` times, 2 s apart: each status's range, the slowest."""
    results = []
    for i in range(rounds):
        if i:
            await asyncio.sleep(2)  # past the shed connections' Retry-After; the server drains
        results.append(await _burst_round(target, n, cap_s))
    keys = sorted({key for statuses, _ in results for key, count in statuses.items() if count})

    def spread(values: Sequence[float], fmt: str) -> str:
        low, high = format(min(values), fmt), format(max(values), fmt)
        return low if low == high else f"{low}-{high}"

    answered = ", ".join(f"{key} x{spread([st[key] for st, _ in results], 'd')}" for key in keys)
    slowest = [times[-1] for _, times in results if times]
    return Row(
        f"burst_{n}",
        answered,
        f"slowest answer {spread(slowest, '.1f')} s" if slowest else "",
        detail={"rounds": [{"statuses": dict(st), "slowest_s": t[-1] if t else None}
                           for st, t in results]},
    )  # fmt: skip


async def _held_bodies(target: Target, n: int, cap_s: float) -> Row:
    """``n`` connections each send half a JSON body and stall; then a probe and an API call.

    Whether requests whose bodies never arrive can take every slot of the server (its
    in-flight bound, or granian's backpressure): the answers to ``GET /health/live`` and
    ``GET /api/v1/users/me`` on fresh connections 1 s later, each waited for 10 s at most.
    """
    body = f'{{"email": "{"a" * 480}'
    stalled = (
        f"POST {BODY_PATH} HTTP/1.1\r\nHost: {target.authority}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{body}"
    ).encode()
    opened = await asyncio.gather(*(_connect(target) for _ in range(n)), return_exceptions=True)
    held = [sock for sock in opened if isinstance(sock, socket.socket)]
    loop = asyncio.get_running_loop()
    try:
        for sock in held:
            await loop.sock_sendall(sock, stalled)
        await asyncio.sleep(1)
        probes = {
            path: await exchange(
                target, _request(target, f"GET {path}", "Connection: close"), min(cap_s, 10)
            )
            for path in (HEAD_PATH, SHED_PATH)
        }
    finally:
        for sock in held:
            sock.close()
    parts = []
    for path, answer in probes.items():
        if answer.status is not None and answer.answered_s is not None:
            parts.append(f"{path} {answer.status} at {answer.answered_s:.1f} s")
        elif answer.ended == "held":
            parts.append(f"{path} no answer in {min(cap_s, 10):.0f} s")
        else:
            parts.append(f"{path} no answer ({answer.ended})")
    return Row(f"held_bodies_{n}", "; ".join(parts), f"{len(held)} bodies stalled")


def _request(target: Target, head: str, *headers: str) -> Iterator[bytes]:
    """One request head (``GET /path``) with ``Host`` and ``headers``, and nothing after it."""
    lines = [f"{head} HTTP/1.1", f"Host: {target.authority}", *headers]
    yield ("\r\n".join(lines) + "\r\n\r\n").encode()


async def probe(
    target: Target, cap_s: float = CAP_S, burst: int = BURST, held: int = HELD
) -> list[Row]:
    """Every probe against ``target``, in order; the last row says whether it still serves."""
    rows = [
        await _measured(name, target, _header_flood(target, size), cap_s)
        for name, size in (
            ("headers_64k", 64 * 1024),
            ("headers_1m", MIB),
            ("headers_64m", 64 * MIB),
        )
    ]
    many = [f"X-H{i}: v" for i in range(1000)]
    get = f"GET {HEAD_PATH}"
    rows.append(
        await _measured(
            "headers_1000", target, _request(target, get, *many, "Connection: close"), cap_s
        )
    )
    rows.extend(await _silent_probes(target, cap_s))
    for name, request in (
        ("negative_content_length", _request(target, f"POST {HEAD_PATH}", "Content-Length: -1")),
        ("nul_in_header", _request(target, get, "X-Bad: a\x00b")),
    ):
        rows.append(await _measured(name, target, request, cap_s))
    if burst:
        rows.append(await _burst(target, burst, cap_s))
    if held:
        rows.append(await _held_bodies(target, held, cap_s))
    alive = await exchange(target, _request(target, get, "Connection: close"), 10)
    rows.append(Row("still_serving", str(alive.status or "no answer"), ""))
    return rows


# ------------------------------------------------------------------------------ output
