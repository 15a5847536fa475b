"""wrk: request lists, runs and their summaries."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.common import LUA_SRC, THREADS, TIMEOUT, WORK

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

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
    """The wrk binary and the scenario scripts it runs."""

    binary: str
    scripts: dict[str, Path]

    def start(
        self, label: str, url: str, script: str, args: Sequence[str], c: int, duration: int
    ) -> subprocess.Popen[str]:
        """Start wrk with ``script`` at ``c`` connections for ``duration`` s; see :meth:`finish`."""
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
        """Wait for a wrk process, save its output in the logs and return its JSON result."""
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
        """Run wrk to the end and return its JSON result."""
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
    """``after`` less ``before``, without zero counts; None when either is unknown."""
    if after is None or before is None:
        return None
    diff = Counter(after)
    diff.subtract(before)
    return Counter({k: v for k, v in diff.items() if v})


def latency_buckets(label: str, route: str) -> dict[float, float] | None:
    """The server's cumulative ``http_request_duration_seconds`` buckets of ``route``.

    Read from the /metrics snapshot ``Server.status_counts(label)`` saved; every method
    summed. ``None`` when there is no snapshot (a server without metrics).
    """
    path = WORK / "logs" / f"metrics-{label}.txt"
    if not path.exists():
        return None
    buckets: dict[float, float] = {}
    pattern = r"^http_request_duration_seconds_bucket\{(.*)\} (\S+)$"
    for match in re.finditer(pattern, path.read_text(), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("route") == route:
            bound = float(labels["le"])  # "+Inf" parses as inf
            buckets[bound] = buckets.get(bound, 0.0) + float(match.group(2))
    return buckets


def histogram_quantile(
    q: float, after: dict[float, float] | None, before: dict[float, float] | None
) -> float | None:
    """The ``q`` quantile (ms) of what the server observed between two bucket snapshots.

    Prometheus's ``histogram_quantile``: linear within the bucket the rank falls in; the
    highest finite bound when it falls in ``+Inf``. ``None`` without observations.
    """
    if after is None or before is None:
        return None
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return round(lower * 1000, 2)
            share = (rank - below) / (count - below) if count > below else 1.0
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, count
    return round(lower * 1000, 2)
