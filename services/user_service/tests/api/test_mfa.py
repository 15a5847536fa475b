"""TOTP enrolment, two-step sign-in, recovery codes, and their bad input.

The codes come from ``oathtool`` (an independent RFC 6238 implementation), not from pyotp.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, update

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from user_service.models import MfaChallenge, TotpCredential, outbox

from ..utils.admin import Account, account
from ..utils.auth import bearer, login
from ..utils.mfa import (
    enable_totp,
    enrol,
    first_step,
    oathtool_code,
    second_step,
    wrong_code,
)
from ..utils.users import PASSWORD

pytestmark = pytest.mark.integration

CONFIRM = "/api/v1/users/me/mfa/totp/confirm"
TOTP = "/api/v1/users/me/mfa/totp"


def _claims(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


async def _events(db_session: AsyncSession, event_type: str, user_id: str) -> int:
    count = await db_session.scalar(
        select(func.count()).where(
            outbox.events.c.type == event_type,
            outbox.events.c.partition_key == f"user/{user_id}",
        )
    )
    return int(count or 0)


async def _user(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await account(client, db_session)


class TestEnrolment:
    async def test_enrolment_gives_secret_uri_and_qr_code_sealed_at_rest(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        body = await enrol(client, user.tokens)
        assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
        assert len(body["secret"]) >= 32
        assert body["otpauth_uri"].startswith("otpauth://totp/")
        assert f"secret={body['secret']}" in body["otpauth_uri"]
        assert "issuer=" in body["otpauth_uri"]
        assert "<svg" in body["qr_svg"]
        stored = await db_session.scalar(
            select(TotpCredential.secret_sealed).where(TotpCredential.user_id == uuid.UUID(user.id))
        )
        assert stored
        assert body["secret"] not in stored  # authenticated encryption, not the secret

    async def test_confirm_switches_it_on_with_ten_recovery_codes(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        _, codes = await enable_totp(client, user.tokens)
        assert len(codes) == len(set(codes)) == 10
        assert await _events(db_session, "user.mfa_enabled.v1", user.id) == 1
        again = await client.post(TOTP, headers=user.headers)
        assert again.status_code == 409
        assert again.json()["error"] == "mfa_already_enabled"

    async def test_confirm_without_enrolment_or_with_a_wrong_code(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        early = await client.post(CONFIRM, json={"code": "123456"}, headers=user.headers)
        assert early.status_code == 409
        assert early.json()["error"] == "mfa_enrolment_not_started"
        secret = (await enrol(client, user.tokens))["secret"]
        wrong = await client.post(CONFIRM, json={"code": wrong_code(secret)}, headers=user.headers)
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_mfa_code"
        assert wrong.headers["content-type"] == "application/problem+json"
        # Until confirmed, signing in takes the password alone.
        assert (await login(client, user.email))["access_token"]

    async def test_drift_window_is_one_step_either_way(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret = (await enrol(client, user.tokens))["secret"]
        for steps in (-3, -2, 2, 3):
            code = oathtool_code(secret, steps=steps)
            response = await client.post(CONFIRM, json={"code": code}, headers=user.headers)
            assert response.status_code == 401, steps
        confirmed = await client.post(
            CONFIRM, json={"code": oathtool_code(secret, steps=-1)}, headers=user.headers
        )
        assert confirmed.status_code == 200
        mfa_token = await first_step(client, user.email)
        assert (await second_step(client, mfa_token, oathtool_code(secret, steps=1))).is_success

    async def test_disable_needs_password_and_code(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret, codes = await enable_totp(client, user.tokens)
        body = {"password": "not it", "code": oathtool_code(secret)}
        wrong = await client.request("DELETE", TOTP, json=body, headers=user.headers)
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "wrong_password"
        body = {"password": PASSWORD, "code": codes[0]}
        assert (
            await client.request("DELETE", TOTP, json=body, headers=user.headers)
        ).status_code == 204
        assert await _events(db_session, "user.mfa_disabled.v1", user.id) == 1
        assert (await login(client, user.email))["access_token"]  # one step again
        again = await client.request("DELETE", TOTP, json=body, headers=user.headers)
        assert again.status_code == 409
        assert again.json()["error"] == "mfa_not_enabled"

    async def test_regenerated_recovery_codes_replace_the_old_ones(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        _, old = await enable_totp(client, user.tokens)
        response = await client.post("/api/v1/users/me/mfa/recovery-codes", headers=user.headers)
        assert response.status_code == 200
        new = response.json()["recovery_codes"]
        assert len(new) == 10
        assert not set(new) & set(old)
        stale = await second_step(client, await first_step(client, user.email), old[0])
        assert stale.status_code == 401
        fresh = await second_step(client, await first_step(client, user.email), new[0])
        assert fresh.status_code == 200


class TestTwoStepSignIn:
    async def test_login_answers_mfa_required_then_verify_issues_tokens(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret, _ = await enable_totp(client, user.tokens)
        response = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 403
        body = response.json()
        assert body["error"] == "mfa_required"
        assert body["expires_in"] == 300
        assert "access_token" not in body
        before = int(time.time())
        tokens = await second_step(client, body["mfa_token"], oathtool_code(secret))
        assert tokens.status_code == 200, tokens.text
        claims = _claims(tokens.json())
        assert claims["amr"] == ["pwd", "otp"]
        assert before - 1 <= claims["auth_time"] <= int(time.time())
        me = await client.get("/api/v1/users/me", headers=bearer(tokens.json()))
        assert me.json()["id"] == user.id
        # The mfa_token is single-use, even with a fresh code.
        again = await second_step(client, body["mfa_token"], oathtool_code(secret, steps=1))
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_mfa_token"

    async def test_a_code_is_accepted_once(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret, _ = await enable_totp(client, user.tokens)
        code = oathtool_code(secret)
        assert (await second_step(client, await first_step(client, user.email), code)).is_success
        replay = await second_step(client, await first_step(client, user.email), code)
        assert replay.status_code == 401
        assert replay.json()["error"] == "invalid_mfa_code"

    async def test_recovery_code_signs_in_once_and_is_announced(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        _, codes = await enable_totp(client, user.tokens)
        typed = codes[0].replace("-", "").upper()  # as read off paper
        used = await second_step(client, await first_step(client, user.email), typed)
        assert used.status_code == 200, used.text
        assert await _events(db_session, "user.recovery_code_used.v1", user.id) == 1
        again = await second_step(client, await first_step(client, user.email), codes[0])
        assert again.status_code == 401

    async def test_password_grant_answers_mfa_required_too(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret, _ = await enable_totp(client, user.tokens)
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": user.email, "password": PASSWORD},
        )
        assert response.status_code == 403
        body = response.json()
        assert body["error"] == "mfa_required"
        assert response.headers["cache-control"] == "no-store"
        assert (await second_step(client, body["mfa_token"], oathtool_code(secret))).is_success

    async def test_admin_reset_switches_it_off(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await _user(client, db_session)
        await enable_totp(client, user.tokens)
        path = f"/api/v1/users/{user.id}/mfa"
        assert (await client.delete(path, headers=user.headers)).status_code == 403
        assert (await client.delete(path, headers=admin.headers)).status_code == 204
        assert await _events(db_session, "user.mfa_disabled.v1", user.id) == 1
        assert (await login(client, user.email))["access_token"]
        again = await client.delete(path, headers=admin.headers)
        assert again.status_code == 409


class TestBadInput:
    async def test_malformed_unknown_and_expired_mfa_tokens(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await _user(client, db_session)
        secret, _ = await enable_totp(client, user.tokens)
        short = await second_step(client, "short", oathtool_code(secret))
        assert short.status_code == 422
        assert [e["field"] for e in short.json()["errors"]] == ["mfa_token"]
        unknown = await second_step(client, "x" * 43, oathtool_code(secret))
        assert unknown.status_code == 401
        assert unknown.json()["error"] == "invalid_mfa_token"
        assert unknown.json()["request_id"]
        mfa_token = await first_step(client, user.email)
        await db_session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.user_id == uuid.UUID(user.id))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        expired = await second_step(client, mfa_token, oathtool_code(secret))
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_mfa_token"

    @pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "abcd-efghi", ""])
    async def test_codes_of_the_wrong_shape_are_422(
        self, client: httpx.AsyncClient, db_session: AsyncSession, code: str
    ) -> None:
        user = await _user(client, db_session)
        await enable_totp(client, user.tokens)
        response = await second_step(client, await first_step(client, user.email), code)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["code"]

    async def test_brute_force_of_codes_reaches_the_lockout(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        """Five wrong codes (the default threshold) lock the account, right code or not."""
        victim, other = await _user(client, db_session), await _user(client, db_session)
        secret, _ = await enable_totp(client, victim.tokens)
        others_secret, _ = await enable_totp(client, other.tokens)
        mfa_token = await first_step(client, victim.email)
        # A code from another account's secret is one more wrong guess.
        guesses = [oathtool_code(others_secret), *(wrong_code(secret) for _ in range(4))]
        statuses = [(await second_step(client, mfa_token, g)).status_code for g in guesses]
        assert statuses == [401] * 5
        locked = await second_step(client, mfa_token, oathtool_code(secret))
        assert locked.status_code == 429
        assert locked.json()["error"] == "rate_limited"
        assert int(locked.headers["retry-after"]) > 0
        password = await client.post(
            "/api/v1/auth/login", json={"email": victim.email, "password": PASSWORD}
        )
        assert password.status_code == 429  # the same lockout as the password's

    async def test_brute_force_of_password_confirmation_reaches_the_lockout(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        """A stolen access token cannot guess ``current_password`` without limit."""
        user = await _user(client, db_session)
        statuses = []
        for n in range(6):
            response = await client.post(
                "/api/v1/auth/password/change",
                json={"current_password": f"guess number {n}", "new_password": "a new passphrase"},
                headers=user.headers,
            )
            statuses.append(response.status_code)
        assert statuses == [403] * 5 + [429]
