from __future__ import annotations

import pytest
from pydantic import SecretStr

from servicekit.settings import Environment, EventSettings
from user_service.config import DEFAULT_RULES, JwtSettings, UserServiceSettings

pytestmark = pytest.mark.unit


class TestRateLimitSettings:
    def test_one_variable_keeps_every_default_rule(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("USER_SERVICE_RATE_LIMIT__AUTH_FAIL_OPEN", "true")
        settings = UserServiceSettings()
        assert set(settings.rate_limit.rules) == set(DEFAULT_RULES)
        assert not any(r.fail_closed for r in settings.rate_limit.effective_rules().values())

    def test_a_partial_rule_is_merged_over_its_default(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("USER_SERVICE_RATE_LIMIT__RULES", '{"login_ip": {"limit": 5}}')
        rules = UserServiceSettings().rate_limit.rules
        assert rules["login_ip"].limit == 5
        assert rules["login_ip"].period_s == DEFAULT_RULES["login_ip"]["period_s"]
        assert rules["login_ip"].fail_closed is True
        assert set(rules) == set(DEFAULT_RULES)


class TestEnumerationSafeMode:
    @pytest.mark.parametrize(
        ("environment", "setting", "on"),
        [
            (Environment.PRODUCTION, None, True),
            (Environment.DEVELOPMENT, None, False),
            (Environment.PRODUCTION, False, False),
            (Environment.DEVELOPMENT, True, True),
        ],
    )
    def test_on_by_default_in_production_only(
        self, environment: Environment, setting: bool | None, on: bool
    ) -> None:
        settings = UserServiceSettings(
            environment=environment,
            secret_key=SecretStr("k" * 48),
            jwt=JwtSettings(private_key=SecretStr("p" * 48)),
            events=EventSettings(seal_keys=[SecretStr("s" * 48)]),
            enumeration_safe=setting,
        )
        assert settings.hides_accounts is on
