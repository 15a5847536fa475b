"""The run's own PostgreSQL database and Redis server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.common import WORK, log, redis_binary, tool_version
from servicekit.testing.process import free_port

# ----------------------------------------------------------------------------- database


@dataclass
class Database:
    """A fresh PostgreSQL database for this run, dropped at the end."""

    admin_url: str
    name: str = field(
        default_factory=lambda: f"bench_{datetime.now(UTC):%Y%m%d_%H%M%S}_{os.getpid()}"
    )
    server_version: str = ""

    def _admin_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(drivername="postgresql").render_as_string(False)

    @property
    def url(self) -> str:
        """The asyncpg URL of this run's database."""
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=self.name)
        return url.render_as_string(hide_password=False)

    async def _execute(self, sql: str) -> str:
        import asyncpg

        conn = await asyncpg.connect(self._admin_dsn(), timeout=5)
        try:
            await conn.execute(sql)
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def create(self) -> None:
        """Create the database and record the server's version."""
        self.server_version = asyncio.run(self._execute(f'CREATE DATABASE "{self.name}"'))
        log(f"created database {self.name} (PostgreSQL {self.server_version})")

    def drop(self) -> None:
        """Drop the database, even with connections still open (``WITH (FORCE)``)."""
        asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        log(f"dropped database {self.name}")


# -------------------------------------------------------------------------------- redis


class Redis:
    """Our own Redis on a free loopback port: no persistence, never the shared 6379."""

    def __init__(self) -> None:
        self.port = free_port()
        self.binary = redis_binary()
        self.process: subprocess.Popen[bytes] | None = None
        self.version = tool_version([self.binary, "--version"])

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (10 s at most) until it answers ``PING``."""
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(WORK),
            "--logfile", str(WORK / "logs" / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    log(f"redis ({Path(self.binary).name}) on 127.0.0.1:{self.port}")
                    return
            time.sleep(0.05)
        raise RuntimeError("redis did not start within 10 s")

    def stop(self) -> None:
        """Terminate the server if it runs; kill it when it has not exited within 10 s."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
