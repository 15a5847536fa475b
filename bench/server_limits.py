"""Hostile HTTP/1.1 requests against one server's edge limits, or uvicorn against granian.

Probe a server that runs already (loopback only); ``--pid`` names the process whose memory
is read (``VmRSS`` and ``VmHWM`` from ``/proc/PID/status``)::

    uv run python bench/server_limits.py --url http://127.0.0.1:8000 --pid 12345

Or start the user service under each server in turn, with the same environment, and compare
them (PostgreSQL as ``make bench`` needs it, a Redis of its own; ~4 minutes)::

    uv run python bench/server_limits.py --compare

``--compare`` runs ``user-service serve`` (uvicorn with servicekit's guarded protocol), plain
uvicorn (httptools, uvloop) as a reference, granian configured with its own closest options
(:data:`GRANIAN_TUNED`), then granian with its defaults, and writes
``results/server-limits-latest.json``.

Each probe uses connections of its own and waits ``--cap`` seconds (40) at most:

- ``headers_64k`` / ``headers_1m`` / ``headers_64m``: one request whose header section is that
  large (one long header line, then the end of the head), sent while the answer is read; the
  answer and the serving process's RSS growth (and peak, ``VmHWM``) over the probe;
- ``headers_1000``: 1,000 short headers;
- ``slowloris``: a request line and one header, then silence: until the server answers or
  closes;
- ``half_body``: a JSON ``POST`` declaring 1,000 bytes, 500 of them sent, then silence;
- ``idle_keep_alive``: one request answered, then silence: how long the connection is held;
- ``negative_content_length`` / ``nul_in_header``: the status and ``Content-Type`` answered;
- ``burst_1024``: 1,024 connections opened, then one request each at once on a route that may
  be shed (``GET /api/v1/users/me`` without a token: 401 when served), three rounds 2 s apart;
  the range of each status's count, and of the slowest answer;
- ``held_bodies_128``: 128 connections each send half a body and stall (as many as the
  in-flight bound); then are ``/health/live`` and the API still answered?

The three silent probes run side by side; the rest one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from harness.probes import BURST, CAP_S, HELD, Row, Target, probe

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: The granian of the comparison, run with ``uv run --with`` (never a project dependency).
GRANIAN = "granian==2.8.9"
#: granian's options closest to ``settings.server``'s defaults (``docs/configuration.md``).
#: ``--http1-buffer-size`` bounds hyper's read buffer, hence the head (32 KiB as
#: ``max_header_bytes``); ``--http1-header-read-timeout`` is ``header_timeout_s``;
#: ``--backpressure`` is ``max_in_flight``. granian has no body timeout, no header-count
#: option (hyper's 100 is fixed) and no idle keep-alive timeout of its own: the header read
#: timeout also closes an idle keep-alive connection.
GRANIAN_TUNED = (
    "--http1-buffer-size", "32768",
    "--http1-header-read-timeout", "10000",
    "--backpressure", "128",
)  # fmt: skip


def table(results: dict[str, list[Row]]) -> str:
    """A Markdown table: one row per probe, one column per server."""
    names = list(results)
    lines = [
        "| probe | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for i, row in enumerate(results[names[0]]):
        cells = [results[name][i].cell() if i < len(results[name]) else "" for name in names]
        lines.append(f"| {row.probe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _loopback_target(url: str, pids: Sequence[int]) -> Target:
    """The ``Target`` of ``url``; anything but a loopback address is refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing {url}: these probes go to loopback addresses only")
    return Target(address, parts.port or 80, tuple(pids))


# ------------------------------------------------------------------------------ compare


def _serving_pids(root: int) -> tuple[int, ...]:
    """The process that serves: the root's deepest Python descendant, or the root itself."""
    import psutil

    with contextlib.suppress(psutil.Error):
        children = [
            child
            for child in psutil.Process(root).children(recursive=True)
            if "resource_tracker" not in " ".join(child.cmdline())
        ]
        if children:  # uv -> granian -> its worker: the worker holds the app
            return (max(children, key=lambda child: child.memory_info().rss).pid,)
    return (root,)


def _servers(uv: str) -> list[tuple[str, Callable[[int], list[str]]]]:
    from harness.common import USER_SERVICE

    def granian(*options: str) -> Callable[[int], list[str]]:
        def command(port: int) -> list[str]:
            return [
                uv, "run", "--frozen", "--with", GRANIAN, "granian",
                "--interface", "asgi", "--factory", "--workers", "1", "--loop", "uvloop",
                "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log", *options,
                "user_service.main:create_app",
            ]  # fmt: skip

        return command

    def plain_uvicorn(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "--factory", "user_service.main:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
            "--loop", "uvloop", "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip

    return [
        ("uvicorn (guarded)", lambda _port: [USER_SERVICE, "serve"]),
        ("uvicorn (plain)", plain_uvicorn),
        ("granian (tuned)", granian(*GRANIAN_TUNED)),
        ("granian (defaults)", granian()),
    ]


def _versions(uv: str) -> dict[str, str]:
    from importlib.metadata import version

    found = {name: version(name) for name in ("uvicorn", "httptools", "uvloop")}
    done = subprocess.run(
        [uv, "run", "--frozen", "--with", GRANIAN, "granian", "--version"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found["granian"] = done.stdout.strip().split()[-1] if done.stdout.strip() else "?"
    return found


def compare(cap_s: float, burst: int, held: int) -> int:
    """Serve the user service under each server in turn; probe each; print and save."""
    from harness.backends import Database, Redis
    from harness.common import POSTGRES_URL, RESULTS, USER_SERVICE, WORK, log, raise_fd_limit
    from harness.servers import Server
    from run import baseline_environment, service_environment
    from servicekit.testing.process import free_port

    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not on PATH (export PATH=$HOME/.local/bin:$PATH)")
    raise_fd_limit()
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    results: dict[str, list[Row]] = {}
    with contextlib.ExitStack() as cleanup:
        db, redis = Database(POSTGRES_URL, name=f"limits_{os.getpid()}"), Redis()
        db.create()
        cleanup.callback(db.drop)
        redis.start()
        cleanup.callback(redis.stop)
        key_file = WORK / "limits-jwt.pem"
        subprocess.run([USER_SERVICE, "keys", "generate", "--out", str(key_file)], check=True)
        cleanup.callback(key_file.unlink, missing_ok=True)
        env = service_environment(baseline_environment(), db.url, redis.url, key_file)
        subprocess.run(
            [USER_SERVICE, "migrate"], env=env, cwd=WORK, check=True, capture_output=True
        )
        for name, command in _servers(uv):
            port = free_port()
            label = "limits-" + name.replace(" (", "-").rstrip(")")
            server = Server(label, command(port), {**env, "PORT": str(port)},
                            ready="/health/ready", kind="service")  # fmt: skip
            try:
                server.start()
                assert server.process is not None  # noqa: S101 - started above
                target = Target("127.0.0.1", port, _serving_pids(server.process.pid))
                log(f"{name}: probing 127.0.0.1:{port}, memory of pid {target.pids}")
                results[name] = asyncio.run(probe(target, cap_s, burst, held))
            finally:
                server.stop()
        versions = _versions(uv)
    document = {
        "versions": versions,
        "granian_tuned_options": list(GRANIAN_TUNED),
        "cap_s": cap_s,
        "servers": {name: [asdict(row) for row in rows] for name, rows in results.items()},
    }
    (RESULTS / "server-limits-latest.json").write_text(json.dumps(document, indent=2) + "\n")
    _write(json.dumps(versions))
    _write(table(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Probe ``--url``, or ``--compare`` the servers; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="the server to probe, e.g. http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, action="append", default=[],
                        help="a process whose RSS is read (repeatable)")  # fmt: skip
    parser.add_argument("--compare", action="store_true",
                        help="serve the user service under each server and probe it")  # fmt: skip
    parser.add_argument("--cap", type=float, default=CAP_S, help="seconds a probe waits at most")
    parser.add_argument(
        "--burst", type=int, default=BURST, help="connections of the burst (0: none)"
    )
    parser.add_argument(
        "--held", type=int, default=HELD, help="stalled bodies of held_bodies (0: none)"
    )
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(args.cap, args.burst, args.held)
    if not args.url:
        parser.error("--url or --compare is required")
    target = _loopback_target(args.url, args.pid)
    from harness.common import raise_fd_limit

    raise_fd_limit()  # the burst's connections
    rows = asyncio.run(probe(target, args.cap, args.burst, args.held))
    if args.json:
        with open(args.json, "w") as file:
            json.dump([asdict(row) for row in rows], file, indent=2)
    _write(table({args.url: rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
