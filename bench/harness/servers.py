"""The servers under test, their readiness, status counts and peak RSS."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from harness.common import METRICS_TOKEN, WORK, log

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    """One server process tree on a loopback port: the service, the baseline or a peer.

    ``kind`` is ``service`` (the user service) or ``notification`` (both have ``/metrics``),
    ``baseline`` or ``peer``.
    """

    def __init__(
        self, name: str, cmd: Sequence[str], env: dict[str, str], *, ready: str, kind: str
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = env
        self.port = int(env["PORT"])
        self.workers = int(env.get("WORKERS", "1"))
        self.ready_path = ready
        self.kind = kind
        self.has_metrics = kind in {"service", "notification"}
        self.log_path = WORK / "logs" / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_kib: dict[int, int] = {}
        self.ready_s: float | None = None  # from the process start to the first 200 on `ready`
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The server's base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server; wait (60 s at most) until it is ready and every worker is up.

        Records :attr:`ready_s`, the time from the start of the process to the first 200 on
        the ready path (polled every 20 ms).
        """
        started = time.monotonic()
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
        deadline = started + 60
        self.ready_s = round(self._wait_ready(self.process, deadline) - started, 3)
        # With several workers, wait until every worker process is up.
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        log(f"{self.name} ready on {self.url} in {self.ready_s:.2f} s "
            f"(workers: {self.worker_pids()})")  # fmt: skip

    def _wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> float:
        """Poll the ready path every 20 ms until it answers 200; the time it first did."""
        # One client for the whole wait: a new one per poll would build an SSL context each
        # time, CPU taken from the server starting up beside it.
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{self.name} exited with {process.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return time.monotonic()
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready within 60 s; see {self.log_path}")

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
        """Record the peak RSS (VmHWM) of each worker so far."""
        with self._lock:
            for pid in self.worker_pids():
                self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), _vm_hwm_kib(pid))

    def peak_mb(self) -> list[float]:
        """Each worker's peak RSS in MB (MiB)."""
        return [round(kib / 1024, 1) for kib in self.peak_kib.values()]

    def stop(self) -> None:
        """Sample RSS one last time, then SIGTERM; kill the process group after 30 s."""
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
        """``http_requests_total`` by status, from the service's /metrics.

        Every route but /metrics and /health: the route label is a template, not always the
        full path. Shed requests (``http_requests_shed_total``) count as 503s.

        Server-side: it also counts requests still in flight when wrk stopped.
        """
        if not self.has_metrics:
            return None
        try:
            headers = {"authorization": f"Bearer {METRICS_TOKEN}"}
            text = httpx.get(self.url + "/metrics", headers=headers, timeout=10).text
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
        # Requests shed at the in-flight bound are answered 503 by the server's protocol,
        # before the app (and its http_requests_total) sees them.
        shed = re.search(r"^http_requests_shed_total (\S+)$", text, re.M)
        if shed is not None:
            counts["503"] += int(float(shed.group(1)))
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
    """Wait until the servers have drained what the previous step left queued.

    That is, until their CPU use falls under ``quiet_percent`` of one core, so one step's
    backlog never slows the next.
    """
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
    """Once a second: the peak RSS (VmHWM) of every running server's workers, and foreign CPU.

    Foreign CPU is the CPU time used by processes that are not part of this run (anything but
    this process tree and the PostgreSQL backends of the bench database), to flag steps a busy
    machine skewed.
    """

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
        """The CPU seconds other processes have used so far, in total and by name."""
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
