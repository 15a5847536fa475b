from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from servicekit.settings import (
    DEV_SECRET_PLACEHOLDER,
    EXTERNAL_SECRET,
    Environment,
    EventSettings,
    ServiceSettings,
)

pytestmark = pytest.mark.unit


class TestServiceSettings:
    def test_platform_variables_are_honoured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@db:5432/app")
        monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
        monkeypatch.setenv("PORT", "9000")
        monkeypatch.setenv("WORKERS", "3")
        settings = ServiceSettings()
        assert settings.database.url == "postgresql+asyncpg://u@db:5432/app"
        assert settings.redis.url == "redis://cache:6379/0"
        assert settings.server.port == 9000
        assert settings.server.workers == 3

    def test_nested_groups_use_double_underscore(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DATABASE__POOL_SIZE", "42")
        monkeypatch.setenv("HTTP__CORS_ORIGINS", '["https://app.example.com"]')
        settings = ServiceSettings()
        assert settings.database.pool_size == 42
        assert settings.http.cors_origins == ["https://app.example.com"]

    def test_cluster_mode_and_a_brace_free_key_prefix(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REDIS__CLUSTER", "true")
        monkeypatch.setenv("REDIS__KEY_PREFIX", "staging:")
        settings = ServiceSettings()
        assert settings.redis.cluster
        assert settings.redis.key_prefix == "staging:"
        # A brace in the prefix would become every key's hash tag, one slot for everything.
        monkeypatch.setenv("REDIS__KEY_PREFIX", "{staging}:")
        with pytest.raises(ValidationError, match="key_prefix"):
            ServiceSettings()

    def test_sqlite_in_the_data_folder_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        url = ServiceSettings(
            service_name="svc", data_dir=Path("/srv/data")
        ).resolved_database_url()
        assert url == "sqlite+aiosqlite:////srv/data/svc.db"

    def test_secrets_are_hidden_in_repr(self) -> None:
        settings = ServiceSettings(secret_key=SecretStr("x" * 40))
        assert "x" * 40 not in repr(settings)

    @pytest.mark.parametrize("secret", [DEV_SECRET_PLACEHOLDER, "short-secret"])
    def test_production_refuses_default_or_short_secret(self, secret: str) -> None:
        with pytest.raises(ValidationError, match="secret_key"):
            ServiceSettings(environment=Environment.PRODUCTION, secret_key=SecretStr(secret))

    def test_production_accepts_strong_secrets(self) -> None:
        settings = ServiceSettings(
            environment=Environment.PRODUCTION, secret_key=SecretStr("k" * 48), events=STRONG_SEAL
        )
        assert settings.is_production
        assert settings.json_logs

    def test_production_refuses_a_default_or_short_seal_key(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def production() -> ServiceSettings:
            return ServiceSettings(
                environment=Environment.PRODUCTION, secret_key=SecretStr("k" * 48)
            )

        with pytest.raises(ValidationError, match=r"events\.seal_keys\.0"):
            production()  # the development key
        monkeypatch.setenv("EVENT_SEAL_KEYS", f'["{"n" * 40}", "short"]')
        with pytest.raises(ValidationError, match=r"events\.seal_keys\.1"):
            production()
        monkeypatch.setenv("EVENT_SEAL_KEYS", f'["{"n" * 40}", "{"o" * 40}"]')
        keys = production().events.seal_keys  # shared by every service
        assert [k.get_secret_value() for k in keys] == ["n" * 40, "o" * 40]

    def test_development_tolerates_the_placeholder(self) -> None:
        assert ServiceSettings().secret_key.get_secret_value() == DEV_SECRET_PLACEHOLDER


#: Events settings with a production-grade seal key.
STRONG_SEAL = EventSettings(seal_keys=[SecretStr("s" * 40)])


class _Vendor(BaseModel):
    api_key: Annotated[SecretStr | None, EXTERNAL_SECRET] = None


class _WithVendor(ServiceSettings):
    vendor: _Vendor = _Vendor()


class TestExternalSecrets:
    def test_third_party_secrets_are_not_length_checked(self) -> None:
        settings = _WithVendor(
            environment=Environment.PRODUCTION,
            secret_key=SecretStr("k" * 48),
            vendor=_Vendor(api_key=SecretStr("short")),
            events=STRONG_SEAL,
        )
        assert settings.vendor.api_key is not None
