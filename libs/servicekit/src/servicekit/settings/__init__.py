"""Settings base shared by every service.

Each service subclasses :class:`ServiceSettings`, sets its own ``env_prefix`` and adds its
own groups. Groups are nested models addressed with ``__`` (``USER_SERVICE_DATABASE__POOL_SIZE``).
The conventional platform variables ``DATABASE_URL``, ``REDIS_URL``, ``HOST``, ``PORT``,
``WORKERS`` and ``DATA_DIR`` are honoured without the prefix because every deployment tool
already speaks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.settings.groups import (
    ConsumerSettings,
    DatabaseSettings,
    Environment,
    EventSettings,
    HttpSettings,
    LoggingSettings,
    RateLimitSettings,
    RedisSettings,
    RuleSettings,
    ServerSettings,
    TracingSettings,
)
from servicekit.settings.secrets import (
    DEV_SECRET_PLACEHOLDER,
    EXTERNAL_SECRET,
    MIN_SECRET_LENGTH,
    ExternalSecret,
    is_weak_secret,
    iter_secrets,
)

__all__ = [
    "DEV_SECRET_PLACEHOLDER",
    "EXTERNAL_SECRET",
    "MIN_SECRET_LENGTH",
    "ConsumerSettings",
    "DatabaseSettings",
    "Environment",
    "EventSettings",
    "ExternalSecret",
    "HttpSettings",
    "LoggingSettings",
    "RateLimitSettings",
    "RedisSettings",
    "RuleSettings",
    "ServerSettings",
    "ServiceSettings",
    "TracingSettings",
    "is_weak_secret",
    "iter_secrets",
]


class ServiceSettings(BaseSettings):
    """Base settings; subclass per service and set ``model_config['env_prefix']``."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    service_name: str = "service"
    #: `production` turns on the start-up checks (no placeholder or short secret, a JWT signing key
    #: required) and JSON logs, and keeps links out of the console mail log.
    environment: Environment = Environment.DEVELOPMENT
    #: Builds the engine with `hide_parameters=False`, so SQL errors and logs may show bound
    #: parameters. Never turns on FastAPI's debug mode.
    debug: bool = False
    #: Local folder, relative to the working directory: the SQLite file, the embedded Redis socket
    #: and log, the development JWT key and the Prometheus multiprocess files.
    data_dir: Path = Field(default=Path("data"), validation_alias="DATA_DIR")
    #: Key of the HMAC that derives a rotated refresh token's successor. Production refuses the
    #: development placeholder and anything under 32 characters.
    secret_key: SecretStr = SecretStr(DEV_SECRET_PLACEHOLDER)

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    http: HttpSettings = HttpSettings()
    logging: LoggingSettings = LoggingSettings()
    tracing: TracingSettings = TracingSettings()
    server: ServerSettings = ServerSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    events: EventSettings = EventSettings()

    # Platform-wide variables without the service prefix; folded into the groups below.
    #: Wins over `USER_SERVICE_DATABASE__URL`; empty counts as unset. Unset: the SQLite file
    #: `{DATA_DIR}/{service_name}.db`.
    database_url: str | None = Field(None, validation_alias="DATABASE_URL", exclude=True)
    #: Wins over `USER_SERVICE_REDIS__URL`; empty counts as unset. Unset: `serve` starts an
    #: embedded `valkey-server` on `{DATA_DIR}/redis.sock`.
    redis_url: str | None = Field(None, validation_alias="REDIS_URL", exclude=True)
    #: Listen address of `serve`; wins over `USER_SERVICE_SERVER__HOST`.
    host: str | None = Field(None, validation_alias="HOST", exclude=True)
    #: Listen port of `serve`; wins over `USER_SERVICE_SERVER__PORT`.
    port: int | None = Field(None, ge=0, le=65535, validation_alias="PORT", exclude=True)
    #: uvicorn worker processes; wins over `USER_SERVICE_SERVER__WORKERS`.
    workers: int | None = Field(None, ge=1, validation_alias="WORKERS", exclude=True)
    #: The keys sealing secret event fields, shared by every service (a JSON list, first key
    #: sealing); wins over `USER_SERVICE_EVENTS__SEAL_KEYS`.
    event_seal_keys: list[SecretStr] | None = Field(
        None, validation_alias="EVENT_SEAL_KEYS", exclude=True
    )

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _fold_platform_variables(self) -> Self:
        if self.database_url:
            self.database.url = self.database_url
        if self.redis_url:
            self.redis.url = self.redis_url
        if self.host:
            self.server.host = self.host
        if self.port is not None:
            self.server.port = self.port
        if self.workers is not None:
            self.server.workers = self.workers
        if self.event_seal_keys:
            self.events.seal_keys = self.event_seal_keys
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            weak = [name for name, value in iter_secrets(self) if is_weak_secret(value)]
            if weak:
                raise ValueError(
                    "refusing to start in production with a default or short secret "
                    f"(< {MIN_SECRET_LENGTH} characters): {', '.join(sorted(weak))}"
                )
        return self

    @property
    def is_production(self) -> bool:
        """True when running with ``environment=production``."""
        return self.environment is Environment.PRODUCTION

    @property
    def docs_exposed(self) -> bool:
        """Whether ``/openapi.json``, ``/docs`` and ``/redoc`` are served."""
        exposed = self.http.expose_docs
        return not self.is_production if exposed is None else exposed

    @property
    def metrics_exposed(self) -> bool:
        """Whether ``/metrics`` is served (behind ``http.metrics_token`` when one is set)."""
        http = self.http
        has_token = http.metrics_token is not None or http.metrics_token_file is not None
        return has_token or not self.is_production

    @property
    def json_logs(self) -> bool:
        """Whether log lines are rendered as JSON."""
        if self.logging.json_format is not None:
            return self.logging.json_format
        return self.is_production

    def resolved_database_url(self) -> str:
        """The configured database URL, or a SQLite file in the data folder."""
        if self.database.url:
            return self.database.url
        path = (self.data_dir / f"{self.service_name}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"
