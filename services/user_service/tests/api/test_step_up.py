"""Step-up (RFC 9470): sensitive operations need a recent sign-in, and re-authentication."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from user_service.models import Session

from ..utils.admin import Account, account
from ..utils.auth import bearer
from ..utils.mfa import enable_totp, oathtool_code
from ..utils.users import PASSWORD

pytestmark = pytest.mark.integration

REAUTH = "/api/v1/auth/reauthenticate"


async def _aged(
    client: httpx.AsyncClient, db_session: AsyncSession, user: Account
) -> dict[str, Any]:
    """Tokens of ``user``'s session as if the sign-in was ten minutes ago (max_age is 300 s)."""
    await db_session.execute(
        update(Session)
        .where(Session.user_id == uuid.UUID(user.id))
        .values(auth_time=utcnow() - timedelta(minutes=10))
    )
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.tokens["refresh_token"]}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _assert_step_up_challenge(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "insufficient_user_authentication"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'max_age="300"' in challenge
    assert response.json()["max_age"] == 300


SENSITIVE = [
    ("POST", "/api/v1/auth/logout-all", None),
    (
        "POST",
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "another long passphrase"},
    ),
    ("DELETE", "/api/v1/users/me", {"password": PASSWORD}),
    ("POST", "/api/v1/users/me/mfa/recovery-codes", None),
    ("POST", "/api/v1/users/me/email-change", {"new_email": "x@example.com", "password": PASSWORD}),
    ("DELETE", "/api/v1/users/me/mfa/totp", {"password": PASSWORD, "code": "123456"}),
]


class TestStepUp:
    @pytest.mark.parametrize(("method", "path", "body"), SENSITIVE)
    async def test_sensitive_operations_need_a_recent_sign_in(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        user = await account(client, db_session)
        stale = await _aged(client, db_session, user)
        response = await client.request(method, path, json=body, headers=bearer(stale))
        _assert_step_up_challenge(response)

    async def test_reauthentication_then_retry_succeeds(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await account(client, db_session)
        stale = await _aged(client, db_session, user)
        change = {"current_password": PASSWORD, "new_password": "another long passphrase"}
        refused = await client.post(
            "/api/v1/auth/password/change", json=change, headers=bearer(stale)
        )
        _assert_step_up_challenge(refused)
        wrong = await client.post(REAUTH, json={"password": "not it"}, headers=bearer(stale))
        assert wrong.status_code == 403
        fresh = await client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(stale))
        assert fresh.status_code == 200, fresh.text
        claims = jwt.decode(fresh.json()["access_token"], options={"verify_signature": False})
        assert claims["amr"] == ["pwd"]
        assert (
            claims["sid"]
            == jwt.decode(stale["access_token"], options={"verify_signature": False})["sid"]
        )
        retried = await client.post(
            "/api/v1/auth/password/change", json=change, headers=bearer(fresh.json())
        )
        assert retried.status_code == 204

    async def test_with_totp_on_reauthentication_needs_a_code(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await account(client, db_session)
        secret, _ = await enable_totp(client, user.tokens)
        stale = await _aged(client, db_session, user)
        no_code = await client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(stale))
        assert no_code.status_code == 400
        assert no_code.json()["error"] == "mfa_code_required"
        fresh = await client.post(
            REAUTH,
            json={"password": PASSWORD, "code": oathtool_code(secret)},
            headers=bearer(stale),
        )
        assert fresh.status_code == 200, fresh.text
        claims = jwt.decode(fresh.json()["access_token"], options={"verify_signature": False})
        assert claims["amr"] == ["pwd", "otp"]
        codes = await client.post(
            "/api/v1/users/me/mfa/recovery-codes", headers=bearer(fresh.json())
        )
        assert codes.status_code == 200
