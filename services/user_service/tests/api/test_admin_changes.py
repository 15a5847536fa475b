"""Admin API: reads with ETags, changes, preconditions, deletion, self-protection."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from servicekit.db import AsyncSession
from user_service.models import Role, User

from ..utils.admin import Account, account
from ..utils.auth import bearer, login
from ..utils.problems import assert_problem
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


class TestGet:
    async def test_any_user_with_its_version_as_etag(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        user = await register(client)
        response = await client.get(f"/api/v1/users/{user['id']}", headers=admin.headers)
        assert response.status_code == 200
        assert response.json() == user
        assert response.headers["etag"] == '"1"'

    async def test_unknown_id_is_404_and_a_malformed_one_422(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=admin.headers)
        assert_problem(response, 404, "user_not_found")
        response = await client.get("/api/v1/users/not-a-uuid", headers=admin.headers)
        assert_problem(response, 422, "validation_error")

    async def test_me_is_still_the_signed_in_user(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.get("/api/v1/users/me", headers=admin.headers)
        assert response.status_code == 200
        assert response.json()["id"] == admin.id


class TestPatch:
    async def test_role_change_takes_effect_at_the_next_sign_in(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        response = await client.patch(
            f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "admin"
        assert response.headers["etag"] == '"2"'
        got = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
        assert got.json()["role"] == "admin"
        assert got.headers["etag"] == '"2"'
        # Tokens name the scopes of the role they were issued for: the old ones are revoked.
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
        assert (await login(client, user.email))["scope"] == "user admin"

    async def test_verified_flag_and_an_empty_patch(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        url = f"/api/v1/users/{user.id}"
        response = await client.patch(url, json={"is_verified": True}, headers=admin.headers)
        assert response.json()["is_verified"] is True
        unchanged = await client.patch(url, json={}, headers=admin.headers)
        assert unchanged.status_code == 200
        assert unchanged.headers["etag"] == response.headers["etag"] == '"2"'
        # Verifying does not touch the user's sessions.
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200

    async def test_deactivation_revokes_every_session_at_once(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        second = await login(client, user.email)
        response = await client.patch(
            f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["is_active"] is False
        for tokens in (user.tokens, second):
            # /auth/logout checks only the token and the revocation list (as other services do).
            assert_problem(
                await client.post("/api/v1/auth/logout", headers=bearer(tokens)),
                401,
                "invalid_token",
            )
            assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401
            refresh = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert refresh.status_code == 401
        denied = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert_problem(denied, 401, "invalid_credentials")
        # Reactivation lets the user sign in again.
        await client.patch(
            f"/api/v1/users/{user.id}", json={"is_active": True}, headers=admin.headers
        )
        assert (await login(client, user.email))["access_token"]

    @pytest.mark.parametrize(
        "body", [{"email": "x@example.com"}, {"role": "root"}, {"role": None}, {"is_active": None}]
    )
    async def test_invalid_bodies_are_422(
        self, client: httpx.AsyncClient, admin: Account, body: dict[str, Any]
    ) -> None:
        user = await register(client)
        response = await client.patch(
            f"/api/v1/users/{user['id']}", json=body, headers=admin.headers
        )
        assert_problem(response, 422, "validation_error")

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient, admin: Account) -> None:
        response = await client.patch(
            f"/api/v1/users/{uuid.uuid4()}", json={"is_verified": True}, headers=admin.headers
        )
        assert_problem(response, 404, "user_not_found")


class TestPreconditions:
    async def test_if_match_must_name_the_current_version(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        user = await register(client)
        url = f"/api/v1/users/{user['id']}"
        etag = (await client.get(url, headers=admin.headers)).headers["etag"]
        first = await client.patch(
            url, json={"is_verified": True}, headers={**admin.headers, "If-Match": etag}
        )
        assert first.status_code == 200
        assert first.headers["etag"] == '"2"'
        stale = await client.patch(
            url, json={"role": "admin"}, headers={**admin.headers, "If-Match": etag}
        )
        assert_problem(stale, 412, "precondition_failed")
        weak = await client.patch(
            url, json={"role": "admin"}, headers={**admin.headers, "If-Match": 'W/"2"'}
        )
        assert_problem(weak, 412, "precondition_failed")
        assert (await client.get(url, headers=admin.headers)).json()["role"] == "user"
        for header in ['"1", "2"', "*"]:
            ok = await client.patch(
                url, json={"is_verified": True}, headers={**admin.headers, "If-Match": header}
            )
            assert ok.status_code == 200

    async def test_a_concurrent_write_is_412(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await register(client)
        # The session still holds version 1 while "another writer" moves the row to 2.
        loaded = await db_session.get(User, uuid.UUID(user["id"]))
        assert loaded is not None
        assert loaded.version == 1
        await db_session.execute(
            update(User)
            .where(User.id == loaded.id)
            .values(version=User.version + 1)
            .execution_options(synchronize_session=False)
        )
        response = await client.patch(
            f"/api/v1/users/{user['id']}", json={"is_verified": True}, headers=admin.headers
        )
        assert_problem(response, 412, "precondition_failed")

    async def test_delete_honours_if_match(self, client: httpx.AsyncClient, admin: Account) -> None:
        user = await register(client)
        url = f"/api/v1/users/{user['id']}"
        stale = await client.delete(url, headers={**admin.headers, "If-Match": '"7"'})
        assert_problem(stale, 412, "precondition_failed")
        ok = await client.delete(url, headers={**admin.headers, "If-Match": '"1"'})
        assert ok.status_code == 204


class TestDelete:
    async def test_delete_removes_the_user_and_revokes_its_tokens(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        user = await account(client, db_session)
        url = f"/api/v1/users/{user.id}"
        response = await client.delete(url, headers=admin.headers)
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await client.get(url, headers=admin.headers), 404, "user_not_found")
        assert_problem(
            await client.post("/api/v1/auth/logout", headers=user.headers), 401, "invalid_token"
        )
        denied = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert_problem(denied, 401, "invalid_credentials")
        assert_problem(await client.delete(url, headers=admin.headers), 404, "user_not_found")


class TestSelfProtection:
    @pytest.mark.parametrize("body", [{"is_active": False}, {"role": "user"}])
    async def test_an_admin_cannot_deactivate_or_demote_themselves(
        self, client: httpx.AsyncClient, admin: Account, body: dict[str, Any]
    ) -> None:
        response = await client.patch(f"/api/v1/users/{admin.id}", json=body, headers=admin.headers)
        assert_problem(response, 409, "cannot_modify_self")
        me = await client.get("/api/v1/users/me", headers=admin.headers)
        assert me.status_code == 200
        assert me.json()["role"] == "admin"
        assert me.json()["is_active"] is True

    async def test_an_admin_cannot_delete_themselves(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.delete(f"/api/v1/users/{admin.id}", headers=admin.headers)
        assert_problem(response, 409, "cannot_modify_self")
        assert (await client.get("/api/v1/users/me", headers=admin.headers)).status_code == 200

    async def test_harmless_changes_to_oneself_are_allowed(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.patch(
            f"/api/v1/users/{admin.id}",
            json={"is_verified": True, "role": "admin", "is_active": True},
            headers=admin.headers,
        )
        assert response.status_code == 200
        assert response.json()["is_verified"] is True

    async def test_an_admin_can_demote_another_admin(
        self, client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
    ) -> None:
        other = await account(client, db_session, role=Role.ADMIN)
        response = await client.patch(
            f"/api/v1/users/{other.id}", json={"role": "user"}, headers=admin.headers
        )
        assert response.json()["role"] == "user"
        assert_problem(
            await client.get("/api/v1/users", headers=other.headers), 401, "invalid_token"
        )
