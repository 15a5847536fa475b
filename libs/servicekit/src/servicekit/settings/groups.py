"""The settings groups every service shares, nested under ``ServiceSettings`` (``DATABASE__…``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from servicekit.settings.secrets import DEV_SECRET_PLACEHOLDER


class Environment(StrEnum):
    """Where the service runs; production turns on the strict start-up checks."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DatabaseSettings(BaseModel):
    """SQLAlchemy engine and pool settings."""

    #: SQLAlchemy async URL (`postgresql+asyncpg://…` or `sqlite+aiosqlite:///…`). Unset: the
    #: SQLite file `{DATA_DIR}/{service_name}.db`.
    url: str | None = None
    #: Connections kept open per process. Overflow connections are closed as soon as they are
    #: returned, so under sustained load they are opened and closed per request: size the
    #: pool for the load and keep the overflow for short bursts.
    pool_size: int = Field(20, ge=1)
    #: Connections allowed beyond the pool for bursts; each is closed when returned, so under
    #: sustained load they are opened per request: size the pool instead.
    max_overflow: int = Field(0, ge=0)
    #: Seconds to wait for a free pooled connection before failing.
    pool_timeout_s: float = Field(5.0, gt=0)
    #: Replace connections older than this (`-1`: never). Not SQLite.
    pool_recycle_s: int = Field(1800, ge=-1)
    #: Off by default: a ping costs three round trips per checkout on asyncpg (BEGIN, ``;``,
    #: ROLLBACK), while without it a dead connection fails one request (503) and SQLAlchemy
    #: then recycles every older connection of the pool.
    pool_pre_ping: bool = False
    #: asyncpg connect timeout; SQLite's lock-wait `timeout`.
    connect_timeout_s: float = Field(5.0, gt=0)
    #: PostgreSQL `statement_timeout` per connection (asyncpg only); `0` leaves it unset.
    statement_timeout_ms: int = Field(10_000, ge=0)
    #: Statements at least this slow are logged (`db.slow_query`) and counted
    #: (`db_slow_queries_total`).
    slow_query_ms: float = Field(200.0, ge=0)
    #: Log every statement (the `sqlalchemy.engine` logger at INFO).
    echo: bool = False


class RedisSettings(BaseModel):
    """redis-py client settings and the embedded fallback server."""

    #: `redis://…`, `rediss://…` or `unix://…`. Unset: the embedded server.
    url: str | None = None
    #: The URL names one node of a Redis Cluster (the client discovers the others).
    cluster: bool = False
    #: Per-command socket timeout. Redis answers in about a millisecond; until the circuit
    #: opens, every request in flight waits this long on a hung server (at 1 s, seconds 1-2
    #: of a frozen Redis answered nothing; at 0.25 s the p99 under load stayed ~100 ms).
    socket_timeout_s: float = Field(0.25, gt=0)
    #: Connect timeout.
    connect_timeout_s: float = Field(1.0, gt=0)
    #: Retries on connection errors and timeouts.
    retries: int = Field(2, ge=0)
    #: Base of the jittered exponential backoff between retries.
    backoff_base_s: float = Field(0.05, ge=0)
    #: Cap of that backoff.
    backoff_cap_s: float = Field(0.5, ge=0)
    #: redis-py's idle-connection health check interval; `0` (the default) checks none: a
    #: dead idle connection fails its next command, which the retries cover. With a check,
    #: redis-py 8.1 runs its PING, retries included, inside the connect retry, so a server
    #: that accepts connections but never answers costs 3 x 3 tries instead of 3.
    health_check_interval_s: int = Field(0, ge=0)
    #: Connection pool size per process; in cluster mode, the most commands in flight at
    #: once (each node's pool has a few more, for pub/sub and pipelines). A command waits up
    #: to `socket_timeout_s` for a free connection.
    max_connections: int = Field(64, ge=1)
    #: Timeouts or connection errors in a row (attempts, retries included) after which the
    #: circuit opens: calls then fail at once, and each caller's degraded path runs, instead
    #: of every request waiting out its timeouts on a hung server. `0` turns the breaker off.
    breaker_failures: int = Field(5, ge=0)
    #: Seconds the open circuit refuses calls before a background probe (a `PING`) is sent
    #: (its success closes the circuit, its failure opens it again; no call waits for it).
    breaker_cooldown_s: float = Field(1.0, gt=0)
    #: Prepended to every key, e.g. to share one Redis between stacks. No braces: a key's
    #: hash tag (cluster slot) is its first `{…}`, which must stay the one the code chose.
    key_prefix: str = Field("", pattern=r"^[^{}]*$")


class HttpSettings(BaseModel):
    """HTTP edge: CORS, trusted hosts and body limits."""

    #: Allowed origins; empty installs no CORS middleware. With origins, credentials are allowed
    #: and the request-id, ETag, `Retry-After` and `RateLimit-*` headers exposed.
    cors_origins: list[str] = Field(default_factory=list)
    #: Proxies (addresses or CIDRs) whose X-Forwarded-For / Forwarded headers are believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Accepted `Host` values: names, `*.example.com` or `*`. Others get 400 `invalid_host`;
    #: `/health/*` and `/metrics` answer any host.
    trusted_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1"])
    #: Larger request bodies get 413 problem+json.
    max_body_bytes: int = Field(1_048_576, ge=1)
    #: JSON bodies (`application/json`, `application/*+json`) nested deeper than this (arrays
    #: and objects) get 400 `json_too_deep` before any parser recurses into them.
    max_json_depth: int = Field(32, ge=1, le=1000)
    #: Add `Strict-Transport-Security: max-age=63072000; includeSubDomains`.
    hsts: bool = False
    #: Serve the API description: `/openapi.json`, `/docs` and `/redoc`. Unset: everywhere but
    #: in production.
    expose_docs: bool | None = None
    #: Bearer token `/metrics` requires (Prometheus: `authorization: {credentials_file: …}`);
    #: other requests get 401. Unset: `/metrics` is open outside production and not served in
    #: production.
    metrics_token: SecretStr | None = None
    #: A file holding `metrics_token` (a mounted secret, shared with the scraper); read when
    #: the app is built, if `metrics_token` is unset.
    metrics_token_file: Path | None = None

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    def resolved_metrics_token(self) -> str | None:
        """``metrics_token``, else the content of ``metrics_token_file``, else ``None``."""
        if self.metrics_token is not None:
            return self.metrics_token.get_secret_value()
        if self.metrics_token_file is not None:
            return self.metrics_token_file.read_text().strip()
        return None


class LoggingSettings(BaseModel):
    """Structured logging."""

    #: Root and uvicorn log level.
    level: str = "INFO"
    json_format: bool | None = None  # None: JSON in production, console elsewhere
    #: Write the `http.request` line for every request.
    access_log: bool = True


class TracingSettings(BaseModel):
    """OpenTelemetry; off unless enabled."""

    #: Export OpenTelemetry spans (FastAPI, SQLAlchemy, Redis); health and metrics requests are not
    #: traced.
    enabled: bool = False
    #: OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`. Unset: the exporter's default
    #: (`OTEL_EXPORTER_OTLP_*`, else `localhost:4318`).
    otlp_endpoint: str | None = None
    #: Parent-based trace-id ratio sampler.
    sample_ratio: float = Field(1.0, ge=0, le=1)


class ServerSettings(BaseModel):
    """Process-level settings used by the ``serve`` command."""

    #: Listen address of `serve`.
    host: str = "127.0.0.1"
    #: Listen port of `serve`.
    port: int = Field(8000, ge=0, le=65535)
    #: Where a process without HTTP API (`relay`, `worker`) serves `/metrics` (behind
    #: `http.metrics_token`) and `/health/live`; unset: it serves nothing.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    #: uvicorn worker processes.
    workers: int = Field(1, ge=1)
    #: How long in-flight requests may run on after SIGTERM.
    graceful_timeout_s: int = Field(20, ge=0)
    #: Largest request line plus headers; more gets 431 problem+json and the connection closed.
    max_header_bytes: int = Field(32_768, ge=1024)
    #: Most headers per request; more gets 431.
    max_headers: int = Field(100, ge=8)
    #: Seconds a connection has, from its first byte (or the request's), to send the whole
    #: request line and headers; later gets 408 and the connection closed.
    header_timeout_s: float = Field(10.0, gt=0)
    #: Seconds from the end of the headers to the end of the body; later gets 408 (or, once a
    #: response has started, the connection closed).
    body_timeout_s: float = Field(30.0, gt=0)
    #: Requests one worker serves at once. Beyond it a request gets an immediate 503
    #: `overloaded` with `Retry-After: 1`, written by the server before any app code, and its
    #: connection is not read again for that second; `/health/*` and `/metrics` are never
    #: shed. `0`: no bound.
    max_in_flight: int = Field(128, ge=0)
    #: Seconds an idle keep-alive connection stays open.
    keep_alive_timeout_s: int = Field(5, ge=1)
    #: Seconds the supervisor waits for a worker's health-check answer before replacing it
    #: (uvicorn's default is 5). A spawned worker answers only once it has re-imported the
    #: command's modules; workers took 5.1-7.3 s to start on a loaded 2-core machine, so the
    #: default leaves a margin of four times the slowest.
    worker_healthcheck_timeout_s: int = Field(30, ge=1)


class RuleSettings(BaseModel):
    """``limit`` requests per ``period_s`` seconds (bursts up to ``limit``)."""

    limit: int = Field(ge=1)
    period_s: float = Field(gt=0)
    #: Authentication rules fail closed when Redis is down (unless settings say otherwise).
    fail_closed: bool = False
    #: Requests an instance may admit per Redis check (1: every request is checked). A lease
    #: of n takes n slots at once and spends them locally: the limit is never exceeded, but
    #: slots an instance holds unused may refuse others slightly early. For busy rules.
    lease: int = Field(1, ge=1)


class RateLimitSettings(BaseModel):
    """Rules by name; ``global_ip`` applies to every request under ``api_prefix``."""

    #: Switch every rule off (the lockout has its own switch).
    enabled: bool = True
    #: Paths the `global_ip` rule applies to.
    api_prefix: str = "/api/"
    #: When Redis is down, let authentication routes through instead of answering 503.
    auth_fail_open: bool = False
    rules: dict[str, RuleSettings] = Field(default_factory=dict)

    def effective_rules(self) -> dict[str, RuleSettings]:
        """The rules with ``auth_fail_open`` applied."""
        if not self.auth_fail_open:
            return dict(self.rules)
        return {
            name: rule.model_copy(update={"fail_closed": False})
            for name, rule in self.rules.items()
        }


class EventSettings(BaseModel):
    """Domain events: the transactional outbox, its relay and the Redis streams."""

    #: Streams the events are spread over by partition key (a subject keeps its order inside
    #: one). Changing it moves subjects between streams: drain the outbox first.
    partitions: int = Field(4, ge=1, le=256)
    #: Run the relay inside each serving process (off: run `<service> relay` instead).
    relay_in_process: bool = True
    #: Seconds between outbox polls when no commit woke the relay.
    poll_interval_s: float = Field(1.0, gt=0)
    #: Rows published per relay transaction and partition.
    batch_size: int = Field(500, ge=1, le=10_000)
    #: Published rows are deleted after this many hours.
    retention_hours: float = Field(24.0, gt=0)
    #: Approximate length each stream is trimmed to (`XADD … MAXLEN ~`).
    stream_maxlen: int = Field(100_000, ge=1000)
    #: Keys sealing the secret fields of events (an emailed link's token), shared by the
    #: services that publish and consume them: the first seals, every one opens. Rotate by
    #: putting a new key first; drop the old one when no event sealed with it is left.
    seal_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(DEV_SECRET_PLACEHOLDER)], min_length=1
    )


class ConsumerSettings(BaseModel):
    """Consuming another service's events (a consumer group per service)."""

    #: Run the consumers inside each serving process (off: run `<service> worker` instead).
    in_process: bool = True
    #: The producing service's `events.partitions`: one reader per partition stream.
    partitions: int = Field(4, ge=1, le=256)
    #: Deliveries of an event before it goes to the dead-letter stream.
    max_attempts: int = Field(5, ge=1, le=100)
    #: An entry unacknowledged this long is claimed by another consumer; longer than the
    #: slowest handler, or a slow one is processed twice (the inbox keeps its effect single).
    claim_idle_ms: int = Field(30_000, ge=100)
    #: Entries read per round trip and partition.
    batch: int = Field(100, ge=1, le=10_000)
