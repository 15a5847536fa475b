"""Notification service settings: the chassis settings plus mail, courier and upstream groups."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import EXTERNAL_SECRET, ConsumerSettings, ServiceSettings


class SmtpSettings(BaseModel):
    """The SMTP relay used by ``email.backend=smtp``."""

    #: SMTP relay host.
    host: str = "localhost"
    #: SMTP relay port.
    port: int = Field(587, ge=1, le=65535)
    #: SMTP login; unset: no authentication.
    username: str | None = None
    #: Issued by the mail provider: not subject to the production secret-length rule.
    password: Annotated[SecretStr | None, EXTERNAL_SECRET] = None
    #: Implicit TLS from the first byte (usually port 465).
    use_tls: bool = False
    #: STARTTLS: ``True`` requires it, ``False`` never, ``None`` upgrades when offered.
    start_tls: bool | None = None
    #: Connect and command timeout.
    timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.use_tls and self.start_tls:
            raise ValueError("smtp.use_tls (implicit TLS) and smtp.start_tls are exclusive")
        return self


class EmailSettings(BaseModel):
    """Outgoing mail: the transport, the sender and where the links in mails point."""

    #: ``console`` logs the message (development); ``smtp`` sends it through ``smtp``.
    backend: Literal["console", "smtp"] = "console"
    #: The `From` address of outgoing mail.
    from_address: str = "no-reply@localhost"
    #: Where the links in mails point: ``{frontend_url}/verify-email?token=…``. The user
    #: service serves those pages itself, so its address works without a front end.
    frontend_url: str = "http://127.0.0.1:8000"
    #: The product name in subjects and greetings.
    product_name: str = "Our service"
    smtp: SmtpSettings = SmtpSettings()


class CourierSettings(BaseModel):
    """Delivery of the mail: retries and the background loop."""

    #: Run the courier inside each serving process (off: run `notification-service worker`).
    in_process: bool = True
    #: Attempts before a delivery is `failed` (an administrator may retry it).
    max_attempts: int = Field(6, ge=1, le=50)
    #: First retry delay; each further one doubles, with ±25 % jitter.
    backoff_base_s: float = Field(5.0, gt=0)
    #: Longest retry delay.
    backoff_max_s: float = Field(1800.0, gt=0)
    #: A delivery being sent is leased this long; a courier that died mid-send leaves it to
    #: another after that.
    lease_s: float = Field(120.0, gt=0)
    #: Seconds between looks for due deliveries when no commit woke the courier.
    poll_interval_s: float = Field(2.0, gt=0)
    #: Deliveries sent per courier cycle.
    batch_size: int = Field(20, ge=1, le=1000)


class UsersSettings(BaseModel):
    """The user service: whose tokens this service trusts and whose events it consumes."""

    #: Base URL of the user service (its JWKS is at `/.well-known/jwks.json`).
    url: str = "http://127.0.0.1:8000"
    #: The `iss` of its access tokens.
    issuer: str = "http://127.0.0.1:8000"
    #: The `aud` its access tokens must carry.
    audience: str = "api"
    #: Its service name: the key space of its streams and denylist on the shared Redis.
    namespace: str = "user_service"
    #: This service's OAuth client there (`user-service clients create notification_service
    #: --scope users:read`); set, the courier reads each recipient's current address and
    #: name when it sends. Unset: the address the events announced last.
    client_id: str | None = None
    #: The secret of `client_id`.
    client_secret: SecretStr | None = None


class NotificationServiceSettings(ServiceSettings):
    """The service's settings, read from the environment.

    Variables use the ``NOTIFICATION_SERVICE_`` prefix and ``__`` for groups, e.g.
    ``NOTIFICATION_SERVICE_EMAIL__BACKEND=smtp``; ``DATABASE_URL``, ``REDIS_URL``, ``HOST``,
    ``PORT``, ``WORKERS``, ``DATA_DIR`` and ``EVENT_SEAL_KEYS`` are read without the prefix.
    """

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_SERVICE_")

    #: Names the SQLite file, the Redis keys, the consumer group and the `service` log field.
    service_name: str = "notification_service"
    email: EmailSettings = EmailSettings()
    courier: CourierSettings = CourierSettings()
    users: UsersSettings = UsersSettings()
    consumer: ConsumerSettings = ConsumerSettings()


@lru_cache
def get_settings() -> NotificationServiceSettings:
    """The process settings, read once from the environment (``cache_clear()`` in tests)."""
    return NotificationServiceSettings()
