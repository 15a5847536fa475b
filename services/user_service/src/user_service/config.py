"""User service settings: the chassis settings plus the service's own groups."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from servicekit.ratelimit.lockout import LockoutSettings
from servicekit.settings import RateLimitSettings, RuleSettings, ServiceSettings


class JwtSettings(BaseModel):
    """Access and refresh tokens."""

    #: The `iss` claim and the base URL of the metadata's links (the public URL). Empty: the
    #: address served, `http://{HOST}:{PORT}` (127.0.0.1 for a wildcard host).
    issuer: str = ""
    #: The `aud` claim required in access tokens.
    audience: str = "api"
    #: Algorithm of the signing key (Ed25519 or RSA).
    algorithm: Literal["EdDSA", "RS256"] = "EdDSA"
    #: Access-token lifetime; revoked sessions stay on the denylist this long plus 30 s.
    access_token_ttl_minutes: int = Field(10, ge=1, le=60)
    #: Session (refresh-token) lifetime from sign-in.
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    #: A rotated refresh token presented again within this window gets the same successor; later,
    #: it revokes the session.
    refresh_grace_seconds: int = Field(10, ge=0, le=120)
    #: PEM of the active signing key (or ``private_key_file``); generated in development.
    private_key: SecretStr | None = None
    #: File holding the PEM signing key (used when `PRIVATE_KEY` is unset).
    private_key_file: Path | None = None
    #: PEM public keys still published in the JWKS after a rotation.
    previous_public_keys: list[str] = Field(default_factory=list)
    #: `Cache-Control: max-age` of `/.well-known/jwks.json`.
    jwks_max_age_s: int = Field(300, ge=0)

    @property
    def access_ttl_s(self) -> int:
        """Access-token lifetime in seconds."""
        return self.access_token_ttl_minutes * 60


#: The OWASP Password Storage Cheat Sheet's argon2id minimums, which it rates equally strong:
#: (memory KiB, iterations) pairs that trade memory for CPU, with one lane.
OWASP_ARGON2ID = ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5))


def owasp_min_iterations(memory_kib: int) -> int | None:
    """The fewest iterations OWASP accepts at this memory cost; ``None`` below its table."""
    return min((t for m, t in OWASP_ARGON2ID if memory_kib >= m), default=None)


class PasswordSettings(BaseModel):
    """Password policy and argon2id cost (at least one of OWASP's minimums, with p=1)."""

    #: Shortest accepted password.
    min_length: int = Field(8, ge=8)
    #: Longest accepted password.
    max_length: int = Field(128, ge=8, le=1024)
    #: argon2id memory cost (KiB). The default is OWASP's m=9 MiB, t=4: as strong as its
    #: m=19 MiB, t=2 and no slower to compute, with half the memory per hash in flight, which
    #: the allocator keeps per hashing thread. Any pair OWASP lists, or above, is accepted.
    argon2_memory_kib: int = Field(9_216, ge=7_168)
    #: argon2id iterations; at least OWASP's for the memory cost (e.g. 2 at 19 MiB, 4 at 9 MiB).
    argon2_time_cost: int = Field(4, ge=1)
    #: argon2id lanes.
    argon2_parallelism: int = Field(1, ge=1)
    #: Threads hashing passwords; bounds the CPU a login storm can take.
    hash_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: Niceness of those threads (Linux; 0 keeps the process's): the event loop preempts
    #: them, so a login storm slows logins instead of every other request.
    hash_nice: int = Field(10, ge=0, le=19)

    @model_validator(mode="after")
    def _at_least_owasp(self) -> Self:
        needed = owasp_min_iterations(self.argon2_memory_kib)
        if needed is None or self.argon2_time_cost < needed:
            pairs = ", ".join(f"m={m} KiB t={t}" for m, t in OWASP_ARGON2ID)
            raise ValueError(f"argon2id cost below OWASP's minimums ({pairs})")
        return self


class OAuthSettings(BaseModel):
    """The OAuth 2 token endpoint."""

    #: `client_id` of tokens issued to first-party apps (sign-in without client credentials).
    first_party_client_id: str = Field("first-party", min_length=1, max_length=64)


class EmailSettings(BaseModel):
    """The emailed links' lifetimes (the notification service sends the mail)."""

    #: Lifetime of an email-verification link.
    verification_ttl_minutes: int = Field(24 * 60, ge=1)
    #: Lifetime of a password-reset link.
    password_reset_ttl_minutes: int = Field(30, ge=1)
    #: Lifetime of an email-change confirmation link (sent to the new address).
    email_change_ttl_minutes: int = Field(60, ge=1)


class AuthSettings(BaseModel):
    """Sign-in rules."""

    #: Unverified accounts cannot sign in (403 `email_not_verified`).
    require_verified_email: bool = False
    #: Step-up (RFC 9470): sensitive operations need a sign-in or re-authentication at most
    #: this old (password, email and MFA changes, deletion, new recovery codes, logout
    #: everywhere).
    step_up_max_age_s: int = Field(300, ge=30, le=86_400)


class MfaSettings(BaseModel):
    """Multi-factor authentication (TOTP, RFC 6238)."""

    #: The issuer shown by authenticator apps (the `otpauth://` URI's `issuer`).
    issuer_name: str = Field("servicekit", min_length=1, max_length=64)
    #: Keys sealing TOTP secrets at rest (authenticated encryption): the first seals, every
    #: one opens, so a key rotates by going first; a secret is re-sealed with the first key
    #: whenever one of its codes is accepted. Empty: a key derived from `SECRET_KEY`.
    secret_keys: list[SecretStr] = Field(default_factory=list)
    #: Lifetime of the `mfa_token` answered by the first step of a sign-in.
    challenge_ttl_s: int = Field(300, ge=30, le=1800)
    #: Recovery codes issued at confirmation (and on regeneration).
    recovery_codes: int = Field(10, ge=5, le=20)


class AuditSettings(BaseModel):
    """The audit trail."""

    #: Events older than this are purged (hourly, by the maintainer).
    retention_days: int = Field(365, ge=1)


class CacheSettings(BaseModel):
    """Cache-aside of user reads in Redis."""

    #: Off: every read goes to the database.
    enabled: bool = True
    #: Lifetime of a cached user (±10 % jitter).
    user_ttl_s: float = Field(300.0, gt=0)
    #: "No such user" is remembered briefly so unknown ids do not hammer the database.
    negative_ttl_s: float = Field(5.0, gt=0)
    #: Entries kept in process memory in front of Redis (0 turns the local tier off);
    #: invalidations reach every instance through Redis pub/sub.
    local_size: int = Field(10_000, ge=0)
    #: Longest an entry lives in process memory (a safety net behind invalidation).
    local_ttl_s: float = Field(30.0, gt=0)


_AUTH = {"fail_closed": True}
#: Per-IP and per-account limits; authentication routes fail closed without Redis.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "global_ip": {"limit": 1200, "period_s": 60, "lease": 50},
    "login_ip": {"limit": 30, "period_s": 60, **_AUTH},
    "login_account": {"limit": 10, "period_s": 60, **_AUTH},
    "register_ip": {"limit": 20, "period_s": 3600, **_AUTH},
    "refresh_session": {"limit": 30, "period_s": 60, **_AUTH},
    "password_reset_ip": {"limit": 10, "period_s": 3600, **_AUTH},
    "password_reset_email": {"limit": 5, "period_s": 3600, **_AUTH},
    "verify_email_ip": {"limit": 10, "period_s": 3600, **_AUTH},
    "verify_email_email": {"limit": 5, "period_s": 3600, **_AUTH},
    "email_change_user": {"limit": 5, "period_s": 3600, **_AUTH},
}


class UserServiceRateLimits(RateLimitSettings):
    """The service's rules.

    Rules given in the environment are merged over the defaults, field by field:
    ``USER_SERVICE_RATE_LIMIT__RULES='{"login_ip": {"limit": 5}}'`` changes one number and
    keeps every other rule.
    """

    #: Rules by name; a rule missing here is not enforced.
    rules: dict[str, RuleSettings] = Field(
        default_factory=lambda: {name: RuleSettings(**rule) for name, rule in DEFAULT_RULES.items()}
    )

    @field_validator("rules", mode="before")
    @classmethod
    def _merge_over_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        merged = {name: dict(rule) for name, rule in DEFAULT_RULES.items()}
        for name, rule in value.items():
            given = rule.model_dump() if isinstance(rule, RuleSettings) else dict(rule)
            merged[name] = {**merged.get(name, {}), **given}
        return merged


def default_rate_limits() -> UserServiceRateLimits:
    """The default limits of the service."""
    return UserServiceRateLimits()


class UserServiceSettings(ServiceSettings):
    """The service's settings, read from the environment.

    Environment variables use the ``USER_SERVICE_`` prefix and ``__`` for groups, e.g.
    ``USER_SERVICE_DATABASE__POOL_SIZE=20``; ``DATABASE_URL``, ``REDIS_URL``, ``HOST``,
    ``PORT``, ``WORKERS`` and ``DATA_DIR`` are read without the prefix.
    """

    model_config = SettingsConfigDict(env_prefix="USER_SERVICE_")

    #: Names the SQLite file, the Redis keys (`{key_prefix}{service_name}:…`), the Redis client
    #: (`{environment}.{service_name}`), the `service` log field, the asyncpg `application_name`
    #: and the OpenTelemetry `service.name`.
    service_name: str = "user_service"
    jwt: JwtSettings = JwtSettings()
    password: PasswordSettings = PasswordSettings()
    oauth: OAuthSettings = OAuthSettings()
    email: EmailSettings = EmailSettings()
    auth: AuthSettings = AuthSettings()
    mfa: MfaSettings = MfaSettings()
    audit: AuditSettings = AuditSettings()
    cache: CacheSettings = CacheSettings()
    lockout: LockoutSettings = LockoutSettings()
    rate_limit: UserServiceRateLimits = UserServiceRateLimits()
    #: Enumeration-safe mode: registering a known address answers like a new registration
    #: (201) and mails the address's owner instead, and password-reset and verification
    #: requests look the address up after the response. Unset: on in production only.
    enumeration_safe: bool | None = None

    @property
    def totp_seal_keys(self) -> list[SecretStr]:
        """The keys sealing TOTP secrets: ``mfa.secret_keys``, else the service's secret key."""
        return self.mfa.secret_keys or [self.secret_key]

    @property
    def hides_accounts(self) -> bool:
        """Whether the enumeration-safe mode is on (``enumeration_safe``, else production)."""
        return self.is_production if self.enumeration_safe is None else self.enumeration_safe

    @model_validator(mode="after")
    def _issuer_defaults_to_the_served_address(self) -> Self:
        # Runs after the chassis folded HOST and PORT into `server`.
        if not self.jwt.issuer:
            host = self.server.host
            host = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104  # nosec B104 - compared, not bound
            host = f"[{host}]" if ":" in host else host
            self.jwt.issuer = f"http://{host}:{self.server.port}"
        return self

    @model_validator(mode="after")
    def _production_needs_a_signing_key(self) -> Self:
        if self.is_production and not (self.jwt.private_key or self.jwt.private_key_file):
            raise ValueError(
                "refusing to start in production without a JWT signing key: set "
                "USER_SERVICE_JWT__PRIVATE_KEY or USER_SERVICE_JWT__PRIVATE_KEY_FILE "
                "(`user-service keys generate` makes one)"
            )
        if self.password.min_length > self.password.max_length:
            raise ValueError("password.min_length is greater than password.max_length")
        return self


@lru_cache
def get_settings() -> UserServiceSettings:
    """The process settings, read once from the environment (``cache_clear()`` in tests)."""
    return UserServiceSettings()
