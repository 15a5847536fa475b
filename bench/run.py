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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from harness.backends import Database, Redis
from harness.common import (
    _T0,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BENCH,
    DATED,
    DURATION,
    OVERLOAD,
    PASSWORD,
    PLATFORM_VARS,
    POSTGRES_URL,
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
from harness.load import Wrk, build_scripts, counter_diff, summarize, write_list
from harness.report import chart, fmt, print_table
from harness.seed import login, seed_users
from harness.servers import RssSampler, Server, settle
from harness.targets import compute_ratios, evaluate_targets, peak_rss
from servicekit.testing.process import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path


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
    wrk = Wrk(wrk_binary, build_scripts())
    info = RunInfo(
        wrk_binary=wrk_binary,
        fd_limit=fd_limit,
        cpus=os.cpu_count() or 1,
        started=datetime.now(UTC),
        idle_check=idle_check_before(),
    )
    log(f"make bench: {info.cpus} CPUs, wrk {wrk_binary}, open files {fd_limit}")

    db = Database(POSTGRES_URL)
    redis = Redis()
    servers: list[Server] = []
    with contextlib.ExitStack() as cleanup:
        db.create()
        cleanup.callback(db.drop)
        redis.start()
        cleanup.callback(redis.stop)
        key_file = WORK / "jwt.pem"
        subprocess.run([USER_SERVICE, "keys", "generate", "--out", str(key_file)], check=True)
        cleanup.callback(key_file.unlink, missing_ok=True)

        base_env = baseline_environment()
        service_env = service_environment(base_env, db.url, redis.url, key_file)
        export_environment(service_env)  # the seeding script reads the same settings
        user_ids, emails, hashing = prepare_database(service_env, info.cpus)
        steps = Scenarios(wrk, RssSampler(db.name), base_env, service_env, emails, servers)
        scenarios = steps.run_all(user_ids)

    data = collect_results(info, db, redis, scenarios, hashing, servers)
    save_results(data)
    print_table(data)
    out(f"me_cached_vs_baseline={fmt(data['ratios']['me_cached_vs_baseline'], 3)}")
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
    """This process's environment without user_service settings or the platform variables."""
    return {
        k: v for k, v in os.environ.items()
        if not k.upper().startswith("USER_SERVICE_") and k.upper() not in PLATFORM_VARS
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
        "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
        "USER_SERVICE_LOGGING__ACCESS_LOG": "false",
        "USER_SERVICE_LOGGING__LEVEL": "WARNING",
        "USER_SERVICE_SERVER__GRACEFUL_TIMEOUT_S": "5",
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
    return user_ids, emails, hashing


@dataclass
class Scenarios:
    """The load steps of one run, the servers they start and what each step measured."""

    wrk: Wrk
    sampler: RssSampler
    base_env: dict[str, str]
    service_env: dict[str, str]
    emails: list[str]
    servers: list[Server]
    results: dict[str, Any] = field(default_factory=dict)

    def run_all(self, user_ids: list[str]) -> dict[str, Any]:
        """Run every scenario, RSS sampled throughout; the results by scenario."""
        ping_list = write_list("ping", [("GET", "/api/v1/ping", "", "")])
        login_list = write_list(
            "login",
            [("POST", "/api/v1/auth/login", "", json.dumps({"email": e, "password": PASSWORD}))
             for e in self.emails[TOKENS : TOKENS + 2000]],
        )  # fmt: skip
        with self.sampler:
            self.one_worker(ping_list, login_list)
            self.database_path(user_ids)
            self.two_workers(ping_list)
        return self.results

    def service(self, name: str, workers: int, **extra: str) -> Server:
        """A user_service server (not started) with ``extra`` environment variables."""
        env = {**self.service_env, "PORT": str(free_port()), "WORKERS": str(workers), **extra}
        server = Server(name, [USER_SERVICE, "serve"], env, ready="/health/ready", metrics=True)
        self.servers.append(server)
        return server

    def baseline(self, name: str, workers: int) -> Server:
        """A bare FastAPI baseline server (not started)."""
        env = {**self.base_env, "HOST": "127.0.0.1", "PORT": str(free_port()),
               "WORKERS": str(workers), "GRACEFUL_TIMEOUT_S": "5"}  # fmt: skip
        cmd = [sys.executable, str(BENCH / "baseline_app.py")]
        server = Server(name, cmd, env, ready="/api/v1/ping", metrics=False)
        self.servers.append(server)
        return server

    def step(
        self, label: str, server: Server, script: str, args: Sequence[str], c: int
    ) -> dict[str, Any]:
        """One wrk step (after a warm-up) at ``c`` connections, summarized."""
        sampler, wrk = self.sampler, self.wrk
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

    def token_list(self, server: Server, name: str) -> Path:
        """Fresh access tokens of TOKENS seeded users (tokens live 10 minutes)."""
        with httpx.Client() as client:
            tokens = [login(client, server.url, email, PASSWORD) for email in self.emails[:TOKENS]]
            for token in tokens:  # warm the user cache
                headers = {"Authorization": f"Bearer {token}"}
                client.get(f"{server.url}/api/v1/users/me", headers=headers).raise_for_status()
        return write_list(name, [("GET", "/api/v1/users/me", t, "") for t in tokens])

    def one_worker(self, ping_list: Path, login_list: Path) -> None:
        """One worker each: baseline and me_cached side by side, then the hash-bound routes."""
        scenarios, step = self.results, self.step
        base1, svc1 = self.baseline("baseline-1w", 1), self.service("user_service-1w", 1)
        with running(self.sampler, base1, svc1):
            me_list = self.token_list(svc1, "me-1w")
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
            self.storm(svc1, login_list)

    def storm(self, svc1: Server, login_list: Path) -> None:
        """Logins at c=16 while me_cached runs at c=32, two wrk processes."""
        sampler, wrk = self.sampler, self.wrk
        settle(sampler.servers)
        me_list = self.token_list(svc1, "me-storm")
        if WARMUP:
            warm = [
                wrk.start("storm-login-warmup", svc1.url, "list", [str(login_list)], 16, WARMUP),
                wrk.start("storm-me-warmup", svc1.url, "list", [str(me_list)], 32, WARMUP),
            ]
            for process in warm:
                wrk.finish(process)
        before = svc1.status_counts("storm-before")
        foreign = sampler.foreign_snapshot()
        storm_login = wrk.start("storm-login", svc1.url, "list", [str(login_list)], 16, DURATION)
        storm_me = wrk.start("storm-me_cached", svc1.url, "list", [str(me_list)], 32, DURATION)
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
        self.results["storm"] = storm
        log(f"storm: me_cached p99 {storm['p99_ms']} ms at {storm['rps']:,.0f} req/s; "
            f"login {storm['login']['rps']:,.1f} req/s")  # fmt: skip

    def database_path(self, user_ids: list[str]) -> None:
        """The database path: admin GETs over 10,000 users with the user cache off."""
        svc_nc = self.service("user_service-1w-nocache", 1, USER_SERVICE_CACHE__ENABLED="false")
        with running(self.sampler, svc_nc):
            with httpx.Client() as client:
                admin_token = login(client, svc_nc.url, ADMIN_EMAIL, ADMIN_PASSWORD)
            ids_list = write_list(
                "users", [("GET", f"/api/v1/users/{i}", admin_token, "") for i in user_ids]
            )
            self.results["user_uncached"] = self.step(
                "user_uncached", svc_nc, "list", [str(ids_list)], 64
            )

    def two_workers(self, ping_list: Path) -> None:
        """Two workers: me_cached and the baseline."""
        base2, svc2 = self.baseline("baseline-2w", 2), self.service("user_service-2w", 2)
        with running(self.sampler, base2, svc2):
            me_list = self.token_list(svc2, "me-2w")
            self.results["baseline_2w"] = self.step(
                "baseline-2w-c64", base2, "list", [str(ping_list)], 64
            )
            self.results["scale_2w"] = self.step(
                "me_cached-2w-c64", svc2, "list", [str(me_list)], 64
            )


def collect_results(
    info: RunInfo,
    db: Database,
    redis: Redis,
    scenarios: dict[str, Any],
    hashing: dict[str, Any],
    servers: list[Server],
) -> dict[str, Any]:
    """Everything a run records: machine, configuration, scenarios, ratios and targets."""
    rss = peak_rss(servers)
    ratios = compute_ratios(scenarios, hashing["limit_rps"])
    targets = evaluate_targets(scenarios, ratios, rss["peak_mb_per_worker"])
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
        "ratios": ratios,
        "targets": targets,
        "all_targets_pass": all(t["pass"] for t in targets),
        "server_logs": {srv.name: srv.log_summary() for srv in servers},
        "written": [str(p.relative_to(BENCH.parent)) for p in written],
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
