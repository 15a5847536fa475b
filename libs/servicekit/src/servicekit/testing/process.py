"""A service run as a real operating-system process, for tests that need real signals and sockets.

In-process ASGI clients cannot show what SIGTERM, ``kill -9``, a proxy or a second machine do;
these helpers start the real command line, wait for readiness over HTTP, and always clean up
the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1.

    Each is held bound until all are chosen: separate :func:`free_port` calls may return
    the same port twice (measured: a cluster node's bus port once equalled another node's
    client port, and the node could not start).
    """
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


class ServiceProcess:
    """``argv`` started in its own process group with its output in ``log_path``.

    ``env`` is added to (and overrides) the current environment; keys mapped to ``None`` are
    removed from it. The process listens on :attr:`port`, passed as ``PORT``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        merged = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port))
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            # The command line comes from the test itself, never from outside input.
            self.process = subprocess.Popen(  # noqa: S603
                list(argv),
                env=merged,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id of the started command (the leader of its process group)."""
        return self.process.pid

    def wait_ready(
        self, path: str = "/health/ready", timeout: float = 40.0, *, base_url: str | None = None
    ) -> None:
        """Poll ``path`` until it answers 200; fail with the process output if it never does.

        ``base_url`` probes another server of the process tree than the one on :attr:`port`.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get((base_url or self.base_url) + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready within {timeout} s:\n{self.output()}")

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the started process (not to the rest of its group)."""
        self.process.send_signal(sig)

    def wait(self, timeout: float = 40.0) -> int:
        """Wait for the process to exit and return its exit code."""
        return self.process.wait(timeout=timeout)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (workers and helpers included); safe to repeat."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        """The process's output so far, read from ``log_path`` (empty if it does not exist)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
