"""Fixtures of the security checklist tests: apps built from modified settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from servicekit.db import AsyncSession
from servicekit.testing import app_client, override_db_session
from user_service.config import UserServiceSettings
from user_service.main import create_app

from ..utils.clients import ClientWith


@pytest.fixture
def client_with(settings: UserServiceSettings, db_session: AsyncSession) -> ClientWith:
    """A rolled-back client of an app whose settings groups are updated.

    For example ``client_with(http={"cors_origins": [...]})``.
    """

    @asynccontextmanager
    async def make(**groups: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
        update = {name: getattr(settings, name).model_copy(update=v) for name, v in groups.items()}
        app = create_app(settings.model_copy(update=update))
        override_db_session(app, db_session)
        async with app_client(app) as client:
            yield client

    return make
