"""The audit trail: a row per security-relevant action, in that action's transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from user_service.models import AuditEvent
from user_service.services.audit import AuditTrail

from ..utils.admin import Account, account
from ..utils.auth import bearer, login
from ..utils.mfa import enable_totp, first_step, second_step, wrong_code
from ..utils.users import PASSWORD

pytestmark = pytest.mark.integration

EVENTS = "/api/v1/admin/audit-events"
MINE = "/api/v1/users/me/security-events"
NEW_PASSWORD = "another long passphrase"


async def _events(client: httpx.AsyncClient, admin: Account, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(EVENTS, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _actions(
    client: httpx.AsyncClient, admin: Account, user: Account
) -> list[tuple[str, str]]:
    """(action, outcome) of the user's events, oldest first."""
    items = await _events(client, admin, user_id=user.id, limit=100)
    return [(e["action"], e["outcome"]) for e in reversed(items)]


class TestRecorded:
    async def test_each_action_leaves_a_row_with_who_where_and_which_request(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        bad = await client.post(
            "/api/v1/auth/login",
            json={"email": user.email, "password": "wrong"},
            headers={"user-agent": "audit-test/1.0"},
        )
        assert bad.status_code == 401
        secret, codes = await enable_totp(client, user.tokens)
        mfa_token = await first_step(client, user.email)
        assert (await second_step(client, mfa_token, wrong_code(secret))).status_code == 401
        assert (await second_step(client, mfa_token, codes[0])).status_code == 200
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        changed = await client.post(
            "/api/v1/auth/password/change", json=change, headers=user.headers
        )
        assert changed.status_code == 204
        patch = await client.patch(
            f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers
        )
        assert patch.status_code == 200, patch.text
        assert await _actions(client, admin, user) == [
            ("account.registered", "success"),
            ("auth.login", "success"),
            ("auth.login", "failure"),
            ("mfa.enrolment_started", "success"),
            ("mfa.enabled", "success"),
            ("auth.mfa_verify", "failure"),
            ("mfa.recovery_code_used", "success"),
            ("auth.login", "success"),  # the session the second step opened
            ("session.revoked", "success"),  # the other sessions, on the password change
            ("account.password_changed", "success"),
            ("session.revoked", "success"),  # every session, on deactivation
            ("admin.user_updated", "success"),
        ]
        signed_in = (await _events(client, admin, user_id=user.id, action="auth.login"))[0]
        assert signed_in["details"]["amr"] == ["pwd", "otp"]
        failure = (await _events(client, admin, user_id=user.id, action="auth.login"))[1]
        assert failure["user_agent"] == "audit-test/1.0"
        assert failure["ip"]
        assert failure["request_id"] == bad.json()["request_id"]
        assert failure["actor_id"] is None  # nobody was signed in
        updated = (await _events(client, admin, user_id=user.id, action="admin.user_updated"))[0]
        assert updated["actor_id"] == admin.id
        assert updated["request_id"] == patch.headers["x-request-id"]

    async def test_a_rolled_back_request_leaves_no_row(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        weak = {"current_password": PASSWORD, "new_password": "short"}
        response = await client.post(
            "/api/v1/auth/password/change", json=weak, headers=user.headers
        )
        assert response.status_code == 422
        assert "account.password_changed" not in {a for a, _ in await _actions(client, admin, user)}

    async def test_rows_are_append_only(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await account(client, db_session)
        with pytest.raises(DBAPIError, match="append-only"):
            async with db_session.begin_nested():
                await db_session.execute(
                    update(AuditEvent)
                    .where(AuditEvent.subject_id == uuid.UUID(user.id))
                    .values(outcome="success", action="nothing.happened")
                )

    async def test_retention_purge_removes_only_old_rows(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await account(client, db_session)
        subject = uuid.UUID(user.id)
        old = AuditEvent(
            id=uuid.uuid4(),
            occurred_at=utcnow() - timedelta(days=400),
            subject_id=subject,
            action="auth.login",
            outcome="success",
            details={},
        )
        db_session.add(old)
        await db_session.flush()
        assert await AuditTrail(retention_days=365).purge(db_session) >= 1
        left = await db_session.scalar(select(func.count()).where(AuditEvent.subject_id == subject))
        assert left == 2  # registered, signed in


class TestListing:
    async def test_filters_and_keyset_pages_newest_first(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        for _ in range(3):
            await login(client, user.email)
        pages: list[list[dict[str, Any]]] = []
        params: dict[str, Any] = {"user_id": user.id, "action": "auth.login", "limit": 2}
        while True:
            response = await client.get(EVENTS, params=params, headers=admin.headers)
            body = response.json()
            pages.append(body["items"])
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert [len(p) for p in pages] == [2, 2]
        times = [e["occurred_at"] for p in pages for e in p]
        assert times == sorted(times, reverse=True)
        assert len({e["id"] for p in pages for e in p}) == 4
        both = await _events(
            client, admin, user_id=user.id, action=["auth.login", "account.registered"]
        )
        assert len(both) == 5
        future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert await _events(client, admin, user_id=user.id, since=future) == []
        assert len(await _events(client, admin, user_id=user.id, until=future)) == 5
        by_actor = await _events(client, admin, actor_id=admin.id, action="auth.login")
        assert [(e["subject_id"], e["actor_client_id"]) for e in by_actor] == [
            (admin.id, "first-party")  # who signed in acted, through the first-party client
        ]

    async def test_bad_queries_and_non_admins_are_refused(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        assert (await client.get(EVENTS, headers=user.headers)).status_code == 403
        assert (await client.get(EVENTS)).status_code == 401
        bad_cursor = await client.get(EVENTS, params={"cursor": "nope"}, headers=admin.headers)
        assert bad_cursor.status_code == 400
        naive = await client.get(
            EVENTS, params={"since": "2026-01-01T00:00:00"}, headers=admin.headers
        )
        assert naive.status_code == 422
        assert naive.headers["content-type"] == "application/problem+json"

    async def test_security_events_show_ones_own_only(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user, other = await account(client, db_session), await account(client, db_session)
        await client.post("/api/v1/auth/login", json={"email": other.email, "password": "bad"})
        response = await client.get(MINE, headers=user.headers)
        assert response.status_code == 200
        items = response.json()["items"]
        assert {e["subject_id"] for e in items} == {user.id}
        assert [e["action"] for e in items] == ["auth.login", "account.registered"]
        ignored = await client.get(MINE, params={"user_id": other.id}, headers=bearer(user.tokens))
        assert {e["subject_id"] for e in ignored.json()["items"]} == {user.id}
