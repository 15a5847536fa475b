"""The load steps of ``make bench``: which servers run, and what each step measures."""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from harness import notification, peers, profile
from harness.common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BENCH,
    DURATION,
    OVERLOAD,
    PASSWORD,
    PEER_STRATEGIES,
    PROFILE,
    TOKENS,
    USER_SERVICE,
    WARMUP,
    log,
)
from harness.load import (
    Wrk,
    counter_diff,
    histogram_quantile,
    latency_buckets,
    summarize,
    write_list,
)
from harness.seed import AUDIT_SUBJECTS, login
from harness.servers import RssSampler, Server, settle
from servicekit.testing.process import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path


ME = "/api/v1/users/me"
AUDIT = "/api/v1/admin/audit-events"


def bearer_list(name: str, path: str, tokens: Sequence[str]) -> Path:
    """A request list of ``GET path``, cycling over ``tokens``."""
    return write_list(name, [("GET", path, token, "") for token in tokens])


def warm(client: httpx.Client, url: str, tokens: Sequence[str]) -> None:
    """``GET url`` once with each token; each must answer 2xx."""
    for token in tokens:
        client.get(url, headers={"Authorization": f"Bearer {token}"}).raise_for_status()


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


@dataclass
class Scenarios:
    """The load steps of one run, the servers they start and what each step measured."""

    wrk: Wrk
    sampler: RssSampler
    base_env: dict[str, str]
    service_env: dict[str, str]
    emails: list[str]
    servers: list[Server]
    peer_env: dict[str, str]
    notification_env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    revocation: dict[str, Any] = field(default_factory=dict)  # by system

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
            self.fastapi_users()
            self.database_path(user_ids)
            self.two_workers(ping_list)
        if PROFILE:
            self.startup_profiles()
        return self.results

    def service(self, name: str, workers: int, **extra: str) -> Server:
        """A user_service server (not started) with ``extra`` environment variables."""
        env = {**self.service_env, "PORT": str(free_port()), "WORKERS": str(workers), **extra}
        server = Server(name, [USER_SERVICE, "serve"], env, ready="/health/ready", kind="service")
        self.servers.append(server)
        return server

    def baseline(self, name: str, workers: int) -> Server:
        """A bare FastAPI baseline server (not started)."""
        env = {**self.base_env, "HOST": "127.0.0.1", "PORT": str(free_port()),
               "WORKERS": str(workers), "GRACEFUL_TIMEOUT_S": "5"}  # fmt: skip
        cmd = [sys.executable, str(BENCH / "baseline_app.py")]
        server = Server(name, cmd, env, ready="/api/v1/ping", kind="baseline")
        self.servers.append(server)
        return server

    def step(
        self,
        label: str,
        server: Server,
        script: str,
        args: Sequence[str],
        c: int,
        *,
        route: str | None = None,
    ) -> dict[str, Any]:
        """One wrk step (after a warm-up) at ``c`` connections, summarized.

        With ``route``, also the p99 of the requests the server admitted to it, from its
        own latency histogram (``admitted_p99_ms``): wrk's percentiles include the requests
        shed with 503 and the second their connection then waits.
        """
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
        if route is not None:
            result["admitted_p99_ms"] = histogram_quantile(
                0.99,
                latency_buckets(f"{label}-after", route),
                latency_buckets(f"{label}-before", route),
            )
        result.update(other)
        log(f"{label}: {result['rps']:,.0f} req/s, p50 {result['p50_ms']} ms, "
            f"p99 {result['p99_ms']} ms, errors {result['errors']}")  # fmt: skip
        return result

    def profiled(
        self, label: str, server: Server, script: str, args: Sequence[str], c: int
    ) -> None:
        """With BENCH_PROFILE, the step once more with py-spy on the (first) worker."""
        if not PROFILE:
            return
        settle(self.sampler.servers)
        spy = profile.attach(server.worker_pids()[0], label, DURATION)
        self.wrk.run(f"{label}-profile", server.url, script, args, c, DURATION)
        profile.finish(spy, label)

    def sign_in(self, server: Server) -> list[str]:
        """Fresh access tokens of TOKENS seeded users (tokens live 10 minutes), cache warm."""
        with httpx.Client() as client:
            tokens = [login(client, server.url, email, PASSWORD) for email in self.emails[:TOKENS]]
            warm(client, server.url + ME, tokens)
        return tokens

    def token_list(self, server: Server, name: str) -> Path:
        """A me_cached request list of fresh access tokens."""
        return bearer_list(name, ME, self.sign_in(server))

    def one_worker(self, ping_list: Path, login_list: Path) -> None:
        """One worker each: baseline and me_cached side by side, then the hash-bound routes."""
        scenarios, step = self.results, self.step
        base1, svc1 = self.baseline("baseline-1w", 1), self.service("user_service-1w", 1)
        with running(self.sampler, base1, svc1):
            tokens = self.sign_in(svc1)
            me_list = bearer_list("me-1w", ME, tokens)
            for c in OVERLOAD:
                key = "baseline" if c == 64 else f"baseline_c{c}"
                scenarios[key] = step(f"baseline-c{c}", base1, "list", [str(ping_list)], c)
                scenarios[f"overload_c{c}"] = step(
                    f"me_cached-c{c}", svc1, "list", [str(me_list)], c, route=ME
                )
                if c == 64:  # seconds after the baseline it is compared with
                    self.notification_preferences(svc1, tokens)
            scenarios["me_cached"] = dict(scenarios["overload_c64"])
            scenarios["overload_c64"]["same_run_as"] = "me_cached"
            scenarios["register"] = step(
                "register", svc1, "register", [secrets.token_hex(4), PASSWORD], 16
            )
            scenarios["login"] = step("login", svc1, "list", [str(login_list)], 16)
            self.profiled("me_cached-c64", svc1, "list", [str(me_list)], 64)
            self.profiled("login", svc1, "list", [str(login_list)], 16)
            self.storm(svc1, login_list)
            sign_in = partial(login, base_url=svc1.url, email=self.emails[-1], password=PASSWORD)
            self.revocation["user_service"] = peers.refused_after_logout(
                svc1.url, sign_in, "/api/v1/users/me", "/api/v1/auth/logout"
            )

    def notification_preferences(self, users: Server, tokens: list[str]) -> None:
        """The notification service's preferences with me_cached's tokens, at c=64."""
        server = notification.server("notification_service-1w", self.notification_env, users)
        self.servers.append(server)
        prefs_list = bearer_list("prefs-1w", notification.PREFERENCES, tokens)
        with running(self.sampler, server):
            with httpx.Client() as client:  # fetches the JWKS; fails loudly if a token is refused
                warm(client, server.url + notification.PREFERENCES, tokens)
            self.results["notification_preferences"] = self.step(
                "notification_preferences-c64", server, "list", [str(prefs_list)], 64
            )

    def fastapi_users(self) -> None:
        """fastapi-users, one worker per strategy: ``GET /users/me`` as me_cached, then logout."""
        for strategy in PEER_STRATEGIES:
            name = f"fastapi_users_{strategy}"
            peer = peers.server(f"{name}-1w", strategy, self.peer_env)
            self.servers.append(peer)
            with running(self.sampler, peer):
                me_list = peers.token_list(peer, strategy, self.emails[:TOKENS])
                for c in OVERLOAD:
                    self.results[f"{name}_c{c}"] = self.step(
                        f"{name}-c{c}", peer, "list", [str(me_list)], c
                    )
                self.profiled(f"{name}-c64", peer, "list", [str(me_list)], 64)
                sign_in = partial(
                    peers.login, base_url=peer.url, strategy=strategy, email=self.emails[-1]
                )
                self.revocation[name] = peers.refused_after_logout(
                    peer.url, sign_in, "/users/me", f"/auth/{strategy}/logout"
                )

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
        """The database path, user cache off: admin GETs over 10,000 users, audit queries."""
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
            self.profiled("user_uncached", svc_nc, "list", [str(ids_list)], 64)
            audit_list = write_list(
                "audit",
                [("GET", f"{AUDIT}?user_id={i}&limit=50", admin_token, "")
                 for i in user_ids[:AUDIT_SUBJECTS]],
            )  # fmt: skip
            self.results["audit_user_events"] = self.step(
                "audit_user_events", svc_nc, "list", [str(audit_list)], 16
            )

    def startup_profiles(self) -> None:
        """Start-up from exec to ready of the service, the peer and the baseline, profiled."""
        for name, server in (
            ("startup-user_service", self.service("user_service-profiled", 1)),
            (
                "startup-fastapi_users_jwt",
                peers.server("fastapi_users-profiled", "jwt", self.peer_env),
            ),
            ("startup-baseline", self.baseline("baseline-profiled", 1)),
        ):
            if server in self.servers:  # not one of the measured servers
                self.servers.remove(server)
            profile.startup(name, server)

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
