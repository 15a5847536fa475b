"""The run's ratios, peak memory, start-up times and targets, from the measured scenarios."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.common import OVERLOAD, PEER_STRATEGIES
from harness.report import ratio, unexpected_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.servers import Server


def peak_rss(servers: Sequence[Server]) -> dict[str, Any]:
    """Peak RSS of every worker, and the highest of the service's, the baseline's, the peer's."""

    def peak(kind: str) -> float | None:
        return max(
            (mb for srv in servers if srv.kind == kind for mb in srv.peak_mb()), default=None
        )

    return {
        "servers": {srv.name: {"workers_mb": srv.peak_mb()} for srv in servers},
        "peak_mb_per_worker": peak("service"),
        "baseline_peak_mb_per_worker": peak("baseline"),
        "peer_peak_mb_per_worker": peak("peer"),
    }


def startup(servers: Sequence[Server]) -> dict[str, float | None]:
    """Seconds from process start to ready, by server (one worker each unless named ``-2w``)."""
    return {srv.name: srv.ready_s for srv in servers}


def peer_ratios(s: dict[str, Any]) -> dict[str, float | None]:
    """me_cached's 2xx/s over fastapi-users' at c=64 and at c=1024, per strategy."""
    ratios = {}
    for strategy in PEER_STRATEGIES:
        peer = f"fastapi_users_{strategy}"
        ratios[f"me_cached_vs_{peer}"] = ratio(s["me_cached"]["ok_rps"], s[f"{peer}_c64"]["ok_rps"])
        ratios[f"me_cached_1024_vs_{peer}_1024"] = ratio(
            s["overload_c1024"]["ok_rps"], s[f"{peer}_c1024"]["ok_rps"]
        )
    return ratios


def compute_ratios(s: dict[str, Any], hash_limit_rps: float) -> dict[str, float | None]:
    """Every reported ratio, on 2xx/s (fast 429/503 answers cannot inflate one)."""
    return {
        "me_cached_vs_baseline": ratio(s["me_cached"]["ok_rps"], s["baseline"]["ok_rps"]),
        "user_uncached_vs_baseline": ratio(s["user_uncached"]["ok_rps"], s["baseline"]["ok_rps"]),
        "notification_prefs_vs_baseline": ratio(
            s["notification_preferences"]["ok_rps"], s["baseline"]["ok_rps"]
        ),
        "login_vs_hash_limit": ratio(s["login"]["ok_rps"], hash_limit_rps),
        "overload_1024_vs_64": ratio(s["overload_c1024"]["ok_rps"], s["overload_c64"]["ok_rps"]),
        "overload_256_vs_64": ratio(s["overload_c256"]["ok_rps"], s["overload_c64"]["ok_rps"]),
        "baseline_1024_vs_64": ratio(s["baseline_c1024"]["ok_rps"], s["baseline"]["ok_rps"]),
        "register_vs_hash_limit": ratio(s["register"]["ok_rps"], hash_limit_rps),
        "storm_me_cached_vs_me_cached": ratio(s["storm"]["ok_rps"], s["me_cached"]["ok_rps"]),
        "scale_2w_vs_1w": ratio(s["scale_2w"]["ok_rps"], s["me_cached"]["ok_rps"]),
        "baseline_2w_vs_1w": ratio(s["baseline_2w"]["ok_rps"], s["baseline"]["ok_rps"]),
        "me_cached_2w_vs_baseline_2w": ratio(s["scale_2w"]["ok_rps"], s["baseline_2w"]["ok_rps"]),
        **peer_ratios(s),
    }


def _target(name: str, value: float | None, goal: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "goal": goal, "pass": bool(ok)}


def peer_targets(
    s: dict[str, Any], r: dict[str, float | None], revocation: dict[str, Any]
) -> list[dict[str, Any]]:
    """Issue 18's goals against fastapi-users: 5x at c=64, no timeouts at c=1024, revocation."""
    targets = [
        _target(f"me_cached_vs_fastapi_users_{st}", r[f"me_cached_vs_fastapi_users_{st}"],
                ">= 5", (r[f"me_cached_vs_fastapi_users_{st}"] or 0) >= 5)
        for st in PEER_STRATEGIES
    ]  # fmt: skip
    timeouts = s["overload_c1024"]["socket_errors"]["timeout"]
    refused = bool(revocation.get("user_service", {}).get("refused_after_logout"))
    return [
        *targets,
        _target("me_cached c=1024 socket timeouts", timeouts, "== 0", timeouts == 0),
        _target("token refused after logout", int(refused), "== 1", refused),
    ]


def evaluate_targets(
    s: dict[str, Any],
    r: dict[str, float | None],
    peak_mb: float | None,
    *,
    startup_s: float | None,
    revocation: dict[str, Any],
) -> list[dict[str, Any]]:
    """Issues 5's, 14's and 18's targets, each with its value and whether it passes."""
    overload_bad = sum(unexpected_errors(s[f"overload_c{c}"]) for c in OVERLOAD)
    uncached_per_worker = s["user_uncached"]["ok_rps"] / s["user_uncached"]["workers"]
    admitted_p99 = s["overload_c1024"].get("admitted_p99_ms")
    return [
        _target("me_cached_vs_baseline", r["me_cached_vs_baseline"], ">= 0.60",
                (r["me_cached_vs_baseline"] or 0) >= 0.60),
        _target("notification_prefs_vs_baseline", r["notification_prefs_vs_baseline"], ">= 0.60",
                (r["notification_prefs_vs_baseline"] or 0) >= 0.60),
        _target("user_uncached req/s per worker", round(uncached_per_worker, 1), ">= 1000",
                uncached_per_worker >= 1000),
        _target("user_uncached p99 ms", s["user_uncached"]["p99_ms"], "< 50",
                s["user_uncached"]["p99_ms"] < 50),
        _target("audit_user_events p99 ms (100,000 rows, c=16)",
                s["audit_user_events"]["p99_ms"], "< 50", s["audit_user_events"]["p99_ms"] < 50),
        _target("overload_1024_vs_64", r["overload_1024_vs_64"], ">= 0.90",
                (r["overload_1024_vs_64"] or 0) >= 0.90),
        _target("overload 5xx/socket errors (not 429/503)", overload_bad, "== 0",
                overload_bad == 0),
        _target("overload c=1024 admitted p99 ms (server histogram)", admitted_p99, "< 250",
                admitted_p99 is not None and admitted_p99 < 250),
        _target("storm me_cached p99 ms", s["storm"]["p99_ms"], "< 50", s["storm"]["p99_ms"] < 50),
        _target("login_vs_hash_limit", r["login_vs_hash_limit"], ">= 0.90",
                (r["login_vs_hash_limit"] or 0) >= 0.90),
        _target("peak RSS MB per worker", peak_mb, "< 150", peak_mb is not None and peak_mb < 150),
        _target("start-up to ready s (1 worker)", startup_s, "< 1",
                startup_s is not None and startup_s < 1),
        *peer_targets(s, r, revocation),
    ]  # fmt: skip
