"""Email change, and ``auth.require_verified_email`` (unverified accounts cannot sign in).

An email change sends a link to the new address; confirming it moves the account.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from servicekit.db import AsyncSession
from servicekit.events import CloudEvent
from user_service.config import UserServiceSettings
from user_service.models import TokenPurpose, outbox

from ..utils.admin import Account, account, set_user_columns
from ..utils.auth import bearer, login
from ..utils.clients import ClientWith
from ..utils.links import requested_tokens, stored_link_token
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration

REQUEST = "/api/v1/users/me/email-change"
CONFIRM = "/api/v1/auth/email-change/confirm"


def _new_email() -> str:
    return f"moved-{uuid.uuid4().hex[:12]}@example.com"


async def _request(
    client: httpx.AsyncClient, user: Account, new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        REQUEST, json={"new_email": new_email, "password": password}, headers=user.headers
    )


async def _link(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    settings: UserServiceSettings,
    user: Account,
    new_email: str,
) -> str:
    response = await _request(client, user, new_email)
    assert response.status_code == 202, response.text
    tokens = await requested_tokens(
        db_session, settings, TokenPurpose.EMAIL_CHANGE, new_email.lower()
    )
    return tokens[-1]


async def _events(db_session: AsyncSession, event_type: str, user_id: str) -> list[dict[str, Any]]:
    envelopes = (
        await db_session.execute(
            select(outbox.events.c.envelope).where(
                outbox.events.c.type == event_type,
                outbox.events.c.partition_key == f"user/{user_id}",
            )
        )
    ).scalars()
    return [CloudEvent.model_validate_json(e).data for e in envelopes]


class TestEmailChange:
    async def test_confirmed_link_moves_the_account_and_signs_out_other_sessions(
        self, client: httpx.AsyncClient, db_session: AsyncSession, settings: UserServiceSettings
    ) -> None:
        user = await account(client, db_session)
        elsewhere = await login(client, user.email)
        new_email = _new_email()
        token = await _link(client, db_session, settings, user, new_email.upper())
        [requested] = await _events(db_session, "user.email_change_requested.v1", user.id)
        assert requested["email"] == new_email  # normalised; the link goes to the new address
        assert requested["previous_email"] == user.email  # and the notice to the old one
        assert token not in str(requested)  # sealed
        # Until confirmed, nothing changes.
        assert (await client.get("/api/v1/users/me", headers=user.headers)).json()[
            "email"
        ] == user.email
        confirmed = await client.post(CONFIRM, json={"token": token})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["email"] == new_email
        assert confirmed.json()["is_verified"] is True
        [changed] = await _events(db_session, "user.email_changed.v1", user.id)
        assert changed == {
            "user_id": user.id,
            "email": new_email,
            "previous_email": user.email,
        }
        me = await client.get("/api/v1/users/me", headers=user.headers)  # the asking session
        assert me.status_code == 200
        assert me.json()["email"] == new_email
        assert (await client.get("/api/v1/users/me", headers=bearer(elsewhere))).status_code == 401
        await login(client, new_email)
        old = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert old.status_code == 401
        again = await client.post(CONFIRM, json={"token": token})
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_or_expired_link"

    async def test_an_address_taken_meanwhile_is_409_and_the_link_stays_usable(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        settings: UserServiceSettings,
        admin: Account,
    ) -> None:
        user = await account(client, db_session)
        new_email = _new_email()
        token = await _link(client, db_session, settings, user, new_email)
        squatter = await register(client, new_email)
        taken = await client.post(CONFIRM, json={"token": token})
        assert taken.status_code == 409
        assert taken.json()["error"] == "email_already_registered"
        assert taken.headers["content-type"] == "application/problem+json"
        me = await client.get("/api/v1/users/me", headers=user.headers)
        assert me.json()["email"] == user.email  # nothing half-written
        assert await _events(db_session, "user.email_changed.v1", user.id) == []
        deleted = await client.delete(f"/api/v1/users/{squatter['id']}", headers=admin.headers)
        assert deleted.status_code == 204
        assert (await client.post(CONFIRM, json={"token": token})).status_code == 200

    async def test_an_older_link_after_a_newer_request_is_400(
        self, client: httpx.AsyncClient, db_session: AsyncSession, settings: UserServiceSettings
    ) -> None:
        user = await account(client, db_session)
        first, second = _new_email(), _new_email()
        old = await _link(client, db_session, settings, user, first)
        new = await _link(client, db_session, settings, user, second)
        stale = await client.post(CONFIRM, json={"token": old})
        assert stale.status_code == 400
        assert stale.json()["error"] == "invalid_or_expired_link"
        assert (await client.post(CONFIRM, json={"token": new})).json()["email"] == second

    @pytest.mark.parametrize("how", ["change", "reset"])
    async def test_a_new_password_cancels_a_pending_change(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        settings: UserServiceSettings,
        how: str,
    ) -> None:
        """Whoever asked with the old password cannot confirm once the owner changes it."""
        user = await account(client, db_session)
        token = await _link(client, db_session, settings, user, _new_email())
        if how == "change":
            change = {"current_password": PASSWORD, "new_password": "another long passphrase"}
            response = await client.post(
                "/api/v1/auth/password/change", json=change, headers=user.headers
            )
            assert response.status_code == 204
        else:
            reset = await stored_link_token(
                db_session,
                {"id": user.id, "email": user.email},
                TokenPurpose.PASSWORD_RESET,
                expires_in_s=600,
            )
            confirm = {"token": reset, "new_password": "another long passphrase"}
            response = await client.post("/api/v1/auth/password-reset/confirm", json=confirm)
            assert response.status_code == 204
        voided = await client.post(CONFIRM, json={"token": token})
        assert voided.status_code == 400
        assert voided.json()["error"] == "invalid_or_expired_link"

    async def test_request_refusals(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user, other = await account(client, db_session), await account(client, db_session)
        wrong = await _request(client, user, _new_email(), password="not it")
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "wrong_password"
        same = await _request(client, user, user.email.upper())
        assert same.status_code == 400
        assert same.json()["error"] == "email_unchanged"
        taken = await _request(client, user, other.email)
        assert taken.status_code == 409
        malformed = await _request(client, user, "not-an-address")
        assert malformed.status_code == 422
        assert (await client.post(REQUEST, json={"new_email": _new_email()})).status_code == 401
        assert await _events(db_session, "user.email_change_requested.v1", user.id) == []

    async def test_audited(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        settings: UserServiceSettings,
        admin: Account,
    ) -> None:
        user = await account(client, db_session)
        new_email = _new_email()
        await client.post(
            CONFIRM, json={"token": await _link(client, db_session, settings, user, new_email)}
        )
        response = await client.get(
            "/api/v1/admin/audit-events",
            params={
                "user_id": user.id,
                "action": ["account.email_change_requested", "account.email_changed"],
            },
            headers=admin.headers,
        )
        rows = response.json()["items"]
        assert [r["action"] for r in rows] == [
            "account.email_changed",
            "account.email_change_requested",
        ]
        assert rows[0]["details"] == {"previous_email": user.email, "email": new_email}


class TestRequireVerifiedEmail:
    async def test_unverified_accounts_cannot_sign_in(
        self, client_with: ClientWith, db_session: AsyncSession
    ) -> None:
        async with client_with(auth={"require_verified_email": True}) as client:
            user = await register(client)
            body = {"email": user["email"], "password": PASSWORD}
            refused = await client.post("/api/v1/auth/login", json=body)
            assert refused.status_code == 403
            assert refused.json()["error"] == "email_not_verified"
            grant = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
            oauth = await client.post("/oauth/token", data=grant)
            assert oauth.status_code == 400
            assert oauth.json()["error"] == "invalid_grant"
            await set_user_columns(db_session, user["id"], is_verified=True)
            assert (await client.post("/api/v1/auth/login", json=body)).status_code == 200
