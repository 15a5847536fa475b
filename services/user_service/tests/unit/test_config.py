from __future__ import annotations

import pytest

from user_service.config import DEFAULT_RULES, UserServiceSettings

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
