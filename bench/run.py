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
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psutil

from harness import notification, peers
from harness.backends import Database, Redis
from harness.common import (
    _T0,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BENCH,
    DATED,
    DURATION,
    METRICS_TOKEN,
    PLATFORM_VARS,
    POSTGRES_URL,
    PROFILE,
    RAISED_LIMIT,
    RATE_LIMIT,
    RESULTS,
    SEEDED_USERS,
    THREADS,
    TIMEOUT,
    TOKENS,
    USER_SERVICE,
    WARMUP,
    WORK,
    ensure_wrk,
    exit_on_sigterm,
    log,
    out,
    raise_fd_limit,
    tool_version,
)
from harness.load import Wrk, build_scripts
from harness.profile import PROFILES
from harness.report import chart, fmt, print_table
from harness.scenarios import Scenarios
from harness.seed import AUDIT_EVENTS, seed_audit_events, seed_users
from harness.servers import RssSampler, Server
from harness.targets import compute_ratios, evaluate_targets, peak_rss, startup

if TYPE_CHECKING:
    from pathlib import Path


# The last line of the output.
FINAL_RATIOS = (
    "me_cached_vs_baseline",
    "notification_prefs_vs_baseline",
    "me_cached_vs_fastapi_users_jwt",
    "me_cached_vs_fastapi_users_redis",
)


@dataclass(frozen=True)
class RunInfo:
    """What the results record about the run itself: when, where and with which limits."""

    wrk_binary: str
    fd_limit: int
    cpus: int
    started: datetime
    idle_check: dict[str, Any]


def main() -> int:
    """Benchmark user_service against the baseline; write, chart and print the results."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    wrk_binary = ensure_wrk()
    fd_limit = raise_fd_limit()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    (WORK / "data").mkdir()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if PROFILE:  # results/profiles/ holds the last profiled run's graphs, never a mix
        shutil.rmtree(PROFILES, ignore_errors=True)
    wrk = Wrk(wrk_binary, build_scripts())
    info = RunInfo(
        wrk_binary=wrk_binary,
        fd_limit=fd_limit,
        cpus=os.cpu_count() or 1,
        started=datetime.now(UTC),
        idle_check=idle_check_before(),
    )
    log(f"make bench: {info.cpus} CPUs, wrk {wrk_binary}, open files {fd_limit}")

    with open(WORK / "logs" / "setup.log", "ab") as log_file:
        peers.build_environment(log_file)
    db = Database(POSTGRES_URL)
    peer_db = Database(POSTGRES_URL, name=f"{db.name}_peer")
    notification_db = Database(POSTGRES_URL, name=f"{db.name}_notifications")
    redis = Redis()
    servers: list[Server] = []
    with contextlib.ExitStack() as cleanup:
        for database in (db, peer_db, notification_db):
            database.create()
            cleanup.callback(database.drop)
        redis.start()
        cleanup.callback(redis.stop)
        key_file = WORK / "jwt.pem"
        subprocess.run([USER_SERVICE, "keys", "generate", "--out", str(key_file)], check=True)
        cleanup.callback(key_file.unlink, missing_ok=True)

        base_env = baseline_environment()
        service_env = service_environment(base_env, db.url, redis.url, key_file)
        export_environment(service_env)  # the seeding script reads the same settings
        user_ids, emails, hashing = prepare_database(service_env, info.cpus)
        notification_env = notification.environment(service_env, notification_db.url)
        notification.migrate(notification_env)
        peer_env = peers.environment(base_env, peer_db.url, redis.url)
        with open(WORK / "logs" / "setup.log", "ab") as log_file:
            peers.seed(peer_env, log_file)
        peers.warm_bytecode(peer_env)
        # The sampler leaves out PostgreSQL backends whose command line names db.name: all
        # three databases' (the others' names start with it).
        steps = Scenarios(
            wrk, RssSampler(db.name), base_env, service_env, emails, servers, peer_env,
            notification_env,
        )  # fmt: skip
        steps.run_all(user_ids)

    data = collect_results(info, db, redis, steps, hashing)
    save_results(data)
    print_table(data)
    out(" ".join(f"{key}={fmt(data['ratios'][key], 3)}" for key in FINAL_RATIOS))
    return 0


def idle_check_before() -> dict[str, Any]:
    """How busy the machine is before the run (other work skews every number), with a warning."""
    busy_before = psutil.cpu_percent(interval=1.0)
    idle_check: dict[str, Any] = {
        "cpu_percent_before": busy_before,
        "loadavg_before": os.getloadavg(),
    }
    if busy_before > 20:
        log(f"warning: the machine is already {busy_before:.0f}% busy; numbers will be noisy")
    return idle_check


def baseline_environment() -> dict[str, str]:
    """This process's environment without the services' settings or the platform variables."""
    return {
        k: v for k, v in os.environ.items()
        if not k.upper().startswith(("USER_SERVICE_", "NOTIFICATION_SERVICE_"))
        and k.upper() not in PLATFORM_VARS
    }  # fmt: skip


def service_environment(
    base_env: dict[str, str], database_url: str, redis_url: str, key_file: Path
) -> dict[str, str]:
    """Production settings except the secrets, which are made up for this run."""
    service_env = {
        **base_env,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOST": "127.0.0.1",
        "WORKERS": "1",
        "DATA_DIR": str(WORK / "data"),
        "USER_SERVICE_ENVIRONMENT": "production",
        "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
        "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
        "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
        "USER_SERVICE_LOGGING__ACCESS_LOG": "false",
        "USER_SERVICE_LOGGING__LEVEL": "WARNING",
        "USER_SERVICE_SERVER__GRACEFUL_TIMEOUT_S": "5",
        # Production serves /metrics only to this bearer; the harness reads it per step.
        "USER_SERVICE_HTTP__METRICS_TOKEN": METRICS_TOKEN,
    }
    if RATE_LIMIT == "off":
        service_env["USER_SERVICE_RATE_LIMIT__ENABLED"] = "false"
    else:
        service_env["USER_SERVICE_RATE_LIMIT"] = raised_rate_limits()
    return service_env


def raised_rate_limits() -> str:
    """The rate-limit settings as JSON with every limit raised to ``RAISED_LIMIT``.

    Every rule still runs its Redis check (the production cost) but none can refuse. The
    settings' own defaults (not read from the environment), every rule kept.
    """
    from user_service.config import UserServiceSettings

    setting = UserServiceSettings.model_fields["rate_limit"]
    limits = setting.get_default(call_default_factory=True).model_copy(deep=True)
    for rule in limits.rules.values():
        rule.limit = RAISED_LIMIT
    return str(limits.model_dump_json())


def export_environment(service_env: dict[str, str]) -> None:
    """Make ``service_env`` this process's user_service settings, dropping any other."""
    os.environ.update(service_env)
    for var in set(os.environ) - set(service_env):
        if var.upper().startswith("USER_SERVICE_"):
            del os.environ[var]


def prepare_database(
    service_env: dict[str, str], cpus: int
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Migrate, seed the users and create the admin: user ids, emails and the hashing costs."""

    def setup_log() -> Any:
        return open(WORK / "logs" / "setup.log", "ab")

    with setup_log() as log_file:
        subprocess.run(
            [USER_SERVICE, "migrate"],
            env=service_env, cwd=WORK, check=True, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    log("migrated")
    user_ids, emails, hashing = asyncio.run(seed_users(SEEDED_USERS))
    hashing["limit_rps"] = round(cpus / (hashing["single_hash_ms"] / 1000), 1)
    log(
        f"seeded {len(user_ids)} users (one shared hash); single verify "
        f"{hashing['single_hash_ms']} ms -> hash-bound limit {hashing['limit_rps']} req/s"
    )
    with setup_log() as log_file:
        subprocess.run(
            [USER_SERVICE, "create-admin", "--email", ADMIN_EMAIL, "--password-stdin"],
            input=(ADMIN_PASSWORD + "\n").encode(),
            env=service_env, cwd=WORK, check=True, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    log("admin created")
    audited = asyncio.run(seed_audit_events(user_ids))
    log(f"seeded {AUDIT_EVENTS:,} audit events about {len(audited)} users")
    return user_ids, emails, hashing


def collect_results(
    info: RunInfo, db: Database, redis: Redis, steps: Scenarios, hashing: dict[str, Any]
) -> dict[str, Any]:
    """Everything a run records: machine, configuration, scenarios, ratios and targets."""
    scenarios, servers = steps.results, steps.servers
    rss = peak_rss(servers)
    ready = startup(servers)
    ratios = compute_ratios(scenarios, hashing["limit_rps"])
    targets = evaluate_targets(
        scenarios,
        ratios,
        rss["peak_mb_per_worker"],
        startup_s=ready.get("user_service-1w"),
        revocation=steps.revocation,
    )
    date = info.started.strftime("%Y-%m-%d")
    written = [RESULTS / "latest.json", RESULTS / "latest.png"]
    if DATED:
        written += [RESULTS / f"{date}.json", RESULTS / f"{date}.png"]
    return {
        "date": date,
        "started_at": info.started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - _T0, 1),
        "machine": {
            "cpus": info.cpus,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "wrk": tool_version([info.wrk_binary, "--version"]),
            "postgres": db.server_version,
            "redis": redis.version,
            "server": server_description(),
            "peer": peers.versions(),
            **info.idle_check,
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
            "open_files_limit": info.fd_limit,
            "note": "rps counts every response, ok_rps only 2xx; ratios use ok_rps. "
            "errors = non-2xx (wrk status >= 400) + socket errors.",
        },
        "hashing": hashing,
        "scenarios": scenarios,
        "rss": rss,
        "startup_s": ready,
        "revocation": steps.revocation,
        "ratios": ratios,
        "targets": targets,
        "all_targets_pass": all(t["pass"] for t in targets),
        "server_logs": {srv.name: srv.log_summary() for srv in servers},
        "written": [str(p.relative_to(BENCH.parent)) for p in written],
        "profiles": sorted(str(p.relative_to(BENCH.parent)) for p in PROFILES.glob("*.svg"))
        if PROFILE
        else [],
    }


def save_results(data: dict[str, Any]) -> None:
    """Write ``latest.json`` and ``latest.png``, and with BENCH_DATED the dated copies."""
    date = data["date"]
    text = json.dumps(data, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(text)
    chart(data, RESULTS / "latest.png")
    if DATED:
        (RESULTS / f"{date}.json").write_text(text)
        shutil.copyfile(RESULTS / "latest.png", RESULTS / f"{date}.png")


def server_description() -> str:
    """Uvicorn with the loop and HTTP implementation its ``auto`` settings resolve to."""
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
