"""Reset and verification links are single-use and expire; a reset revokes sessions.

Covered elsewhere (``tests/api/test_account.py``): a verification link works once
(``TestEmailVerification::test_a_link_works_once``), an expired verification link is refused
(``…::test_an_expired_link_is_rejected``), a reset ends every session and its link then
fails (``TestPasswordReset::test_reset_sets_the_password_and_ends_every_session``), racing
confirmations use a link once (``TestConcurrentConfirmation``). Here: the reset link's
expiry, at the boundary.
"""

from __future__ import annotations

import httpx
import pytest

from servicekit.db import AsyncSession
from user_service.models import TokenPurpose

from ..utils.auth import bearer, login
from ..utils.links import stored_link_token
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration

CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a brand new passphrase"


async def test_an_expired_reset_link_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    token = await stored_link_token(db_session, user, TokenPurpose.PASSWORD_RESET, expires_in_s=-1)
    response = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_or_expired_link"
    # The old password and the session still work: nothing happened.
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200
    await login(client, user["email"], PASSWORD)


async def test_a_live_reset_link_works_once_and_revokes_sessions(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    token = await stored_link_token(db_session, user, TokenPurpose.PASSWORD_RESET, expires_in_s=60)
    first = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert first.status_code == 204
    again = await client.post(CONFIRM, json={"token": token, "new_password": "another one!"})
    assert again.status_code == 400
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401
    await login(client, user["email"], NEW_PASSWORD)
