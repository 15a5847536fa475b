"""Fixtures of the admin API tests (their helpers are in ``tests/utils/admin.py``)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from servicekit.db import AsyncSession
from user_service.models import Role

from ..utils.admin import Account, account


@pytest.fixture
async def admin(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await account(client, db_session, role=Role.ADMIN)


@pytest.fixture
def prefix() -> str:
    """An email prefix only this test's users have: listings ignore everyone else."""
    return f"t{uuid.uuid4().hex[:10]}-"
