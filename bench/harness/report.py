"""Ratios, the table and the chart."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from harness.common import DURATION, OVERLOAD, PEER_STRATEGIES, THREADS, WARMUP, out

if TYPE_CHECKING:
    from pathlib import Path

# ------------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float | None:
    """``a / b`` rounded to three decimals; None when ``b`` is zero."""
    return round(a / b, 3) if b else None


def unexpected_errors(result: dict[str, Any]) -> int:
    """Socket errors plus non-2xx responses wrk saw, less deliberate 429/503 back-pressure.

    The deliberate ones are those the server's own counters show (the server's counts also
    include requests finished after wrk stopped, so they only classify, never add).
    """
    sockets = int(sum(result["socket_errors"].values()))
    status: dict[str, int] = result.get("status_counts") or {}
    deliberate = status.get("429", 0) + status.get("503", 0)
    return sockets + max(0, int(result["non_2xx"]) - deliberate)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number with thousands separators and ``digits`` decimals; a dash for None."""
    return "—" if value is None else f"{value:,.{digits}f}"


def print_table(data: dict[str, Any]) -> None:
    """Print the run on stdout: scenarios, hashing, peak RSS, ratios, targets, log warnings."""
    out()
    out(
        f"make bench — {data['date']} — {data['machine']['cpus']} CPUs, wrk -t{THREADS} "
        f"-d{DURATION}s (+{WARMUP}s warm-up), rate limits {data['config']['rate_limit']}"
    )
    _print_scenarios(data)
    out()
    _print_systems(data)
    out()
    _print_costs(data)
    _print_errors(data["scenarios"])
    out()
    _print_ratios_and_targets(data)
    _print_server_logs(data["server_logs"])
    out()
    out(f"took {data['elapsed_s']:.0f} s; wrote {data['written']}")
    if data["profiles"]:
        out(f"py-spy flame graphs: {', '.join(data['profiles'])}")


def _table_rows(s: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """The table's rows: name, scenario result and the baseline it is compared with (if any)."""
    rows = [
        ("baseline", s["baseline"], None),
        ("me_cached", s["me_cached"], s["baseline"]),
        ("notification_preferences", s["notification_preferences"], s["baseline"]),
        ("user_uncached", s["user_uncached"], s["baseline"]),
        ("audit_user_events", s["audit_user_events"], None),
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
    for strategy in PEER_STRATEGIES:
        for c in OVERLOAD:
            base = s[f"baseline_c{c}"] if c != 64 else s["baseline"]
            rows.append(
                (f"fastapi-users {strategy} c={c}", s[f"fastapi_users_{strategy}_c{c}"], base)
            )
    rows.append(("scale: me_cached", s["scale_2w"], s["baseline_2w"]))
    rows.append(("scale: baseline", s["baseline_2w"], None))
    return rows


def _print_scenarios(data: dict[str, Any]) -> None:
    """One row per scenario, then the busiest foreign processes of the rows they skewed."""
    rows = _table_rows(data["scenarios"])
    header = (
        f"{'scenario':<26}{'c':>6}{'wrk':>5}{'req/s':>11}{'2xx/s':>11}"
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
            f"{name:<26}{r['concurrency']:>6}{r['workers']:>4}w{r['rps']:>11,.0f}{r['ok_rps']:>11,.0f}"
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


def systems(s: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], str, str | None]]:
    """Every system at one worker: label, its results at OVERLOAD, server, revocation key."""
    base = [s["baseline"] if c == 64 else s[f"baseline_c{c}"] for c in OVERLOAD]
    rows: list[tuple[str, list[dict[str, Any]], str, str | None]] = [
        ("baseline (bare FastAPI)", base, "baseline-1w", None),
        ("user_service me_cached", [s[f"overload_c{c}"] for c in OVERLOAD], "user_service-1w",
         "user_service"),
    ]  # fmt: skip
    for st in PEER_STRATEGIES:
        peer = f"fastapi_users_{st}"
        rows.append(
            (f"fastapi-users {st}", [s[f"{peer}_c{c}"] for c in OVERLOAD], f"{peer}-1w", peer)
        )
    return rows


def _print_systems(data: dict[str, Any]) -> None:
    """Every system side by side: 2xx/s and p99 by concurrency, timeouts, start-up, RSS, logout."""
    cs = "".join(f"{f'c={c}':>8}" for c in OVERLOAD)
    header = (f"{'GET /users/me, 1 worker':<25}{'2xx/s at':<9}{cs}  {'p99 ms at':<10}{cs}"
              f"{'timeouts':>10}{'ready s':>9}{'RSS MB':>8}  refused after logout")  # fmt: skip
    out(header)
    out("-" * len(header))
    rss = data["rss"]["servers"]
    for label, series, server, revocation_key in systems(data["scenarios"]):
        ok = "".join(f"{r['ok_rps']:>8,.0f}" for r in series)
        p99 = "".join(f"{r['p99_ms']:>8,.0f}" for r in series)
        timeouts = sum(r["socket_errors"]["timeout"] for r in series)
        ready = data["startup_s"].get(server)
        peak = max(rss.get(server, {}).get("workers_mb") or [0])
        revoked = data["revocation"].get(revocation_key or "", {}).get("refused_after_logout")
        verdict = "—" if revoked is None else ("yes" if revoked else "NO (still accepted)")
        out(f"{label:<25}{'':<9}{ok}  {'':<10}{p99}{timeouts:>10}{fmt(ready):>9}"
            f"{peak:>8.0f}  {verdict}")  # fmt: skip
    out("timeouts: wrk socket timeouts (no answer within the wrk timeout), all three steps")


def _print_costs(data: dict[str, Any]) -> None:
    """The cost of one argon2id verification and the peak RSS of each server's workers."""
    h = data["hashing"]
    out(
        f"single argon2id verification: {h['single_hash_ms']} ms of CPU "
        f"({h.get('single_hash_wall_ms', '?')} ms wall; median of {h['samples']}); "
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


def _print_errors(s: dict[str, Any]) -> None:
    """The statuses of register and login when some failed, and the overload steps' errors."""
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


def _print_ratios_and_targets(data: dict[str, Any]) -> None:
    """The ratios, then each target with its value, goal and verdict."""
    out(f"{'ratio':<44}{'value':>9}")
    for key, value in data["ratios"].items():
        out(f"{key:<44}{fmt(value, 3):>9}")
    out()
    out(f"{'target':<40}{'value':>10}  {'goal':<10}{'result':>7}")
    for t in data["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        out(f"{t['name']:<40}{fmt(t['value']):>10}  {t['goal']:<10}{verdict:>7}")


def _print_server_logs(server_logs: dict[str, dict[str, int]]) -> None:
    """The most frequent warnings and errors each server logged, if any."""
    logs = {k: v for k, v in server_logs.items() if v}
    if logs:
        out()
        out("server log warnings/errors (full logs in bench/.work/logs/):")
        for name, events in logs.items():
            for event, n in sorted(events.items(), key=lambda kv: -kv[1])[:8]:
                out(f"  {name}: {event} x{n}")


def chart(data: dict[str, Any], path: Path) -> None:
    """2xx/s and p99 against concurrency for every system, one worker each."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rps, ax_p99) = plt.subplots(1, 2, figsize=(12, 4.6))
    for label, series, _server, _key in systems(data["scenarios"]):
        style = "o--" if label.startswith("baseline") else "o-"
        ax_rps.plot(OVERLOAD, [r["ok_rps"] for r in series], style, label=label)
        ax_p99.plot(OVERLOAD, [r["p99_ms"] for r in series], style, label=label)
    for ax, title, unit in (
        (ax_rps, "throughput (2xx responses)", "req/s (log scale)"),
        (ax_p99, "p99 latency", "ms (log scale)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(OVERLOAD, [str(c) for c in OVERLOAD])
        ax.set_xlabel("concurrent connections (wrk -c)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.set_yscale("log")  # the systems differ by more than a factor of ten
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    r = data["ratios"]
    fig.suptitle(
        f"GET /users/me — 1 uvicorn worker each, {data['machine']['cpus']} CPUs, {data['date']}\n"
        f"me_cached ÷ baseline {fmt(r['me_cached_vs_baseline'])}, "
        f"÷ fastapi-users jwt {fmt(r['me_cached_vs_fastapi_users_jwt'], 1)}, "
        f"÷ fastapi-users redis {fmt(r['me_cached_vs_fastapi_users_redis'], 1)} (c=64)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
