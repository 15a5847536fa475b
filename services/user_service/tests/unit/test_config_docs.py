"""docs/configuration.md is what scripts/gen_config_docs.py renders from the settings now."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import cast

import pytest
from pydantic import BaseModel

from user_service.config import UserServiceSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]
GENERATOR = ROOT / "scripts" / "gen_config_docs.py"
DOCS = ROOT / "docs" / "configuration.md"


def load_generator() -> ModuleType:
    # The generator imports its sibling settings_fields.py, as it does when run as a script.
    if str(GENERATOR.parent) not in sys.path:
        sys.path.append(str(GENERATOR.parent))
    spec = importlib.util.spec_from_file_location("gen_config_docs", GENERATOR)
    assert spec is not None, GENERATOR
    assert spec.loader is not None, GENERATOR
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def render() -> str:
    return cast(Callable[[], str], load_generator().render)()


def test_committed_reference_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date with the settings classes: run `make docs`"
    )


def test_rendering_does_not_depend_on_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 977)
    monkeypatch.setenv("USER_SERVICE_DATABASE__POOL_SIZE", "77")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@host-from-the-environment/db")
    text = render()
    assert "977" not in text
    assert "host-from-the-environment" not in text
    assert "| `USER_SERVICE_DATABASE__POOL_SIZE` | int ≥ 1 | `20` |" in text
    assert "| number of CPUs |" in text


def leaf_variables(model: type[BaseModel], prefix: str) -> list[str]:
    names: list[str] = []
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names += leaf_variables(group, f"{variable}__")
        elif not field.validation_alias:
            names.append(variable)
    return names


def test_every_setting_has_a_row() -> None:
    text = render()
    names = leaf_variables(UserServiceSettings, "USER_SERVICE_")
    assert len(names) > 50
    assert [name for name in names if f"| `{name}` |" not in text] == []
    for alias in ("DATABASE_URL", "REDIS_URL", "HOST", "PORT", "WORKERS", "DATA_DIR"):
        assert f"| `{alias}` |" in text
