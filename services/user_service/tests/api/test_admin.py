"""Admin user management: scope guard, cursor listing, changes with ETags, deletion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from user_service.models import Role, User

from ..conftest import PASSWORD, bearer, login, register

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens)


async def _set(db_session: AsyncSession, user_id: str, **values: Any) -> None:
    """Change a user behind the API's back (as a migration or another service would)."""
    await db_session.execute(update(User).where(User.id == uuid.UUID(user_id)).values(**values))


async def account(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    *,
    email: str | None = None,
    role: Role = Role.USER,
) -> Account:
    """A registered user with the given role, signed in after the role was set."""
    user = await register(client, email)
    if role is not Role.USER:
        await _set(db_session, user["id"], role=role)
    return Account(user["id"], user["email"], await login(client, user["email"]))


@pytest.fixture
async def admin(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await account(client, db_session, role=Role.ADMIN)


@pytest.fixture
def prefix() -> str:
    """An email prefix only this test's users have: listings ignore everyone else."""
    return f"t{uuid.uuid4().hex[:10]}-"


def _assert_problem(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == error


async def _ids(client: httpx.AsyncClient, admin: Account, **params: Any) -> list[str]:
    response = await client.get("/api/v1/users", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


class TestAccess:
    async def test_a_user_without_the_admin_scope_gets_403(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await account(client, db_session)
        target = f"/api/v1/users/{user.id}"
        for response in [
            await client.get("/api/v1/users", headers=user.headers),
            await client.get(target, headers=user.headers),
            await client.patch(target, json={"role": "admin"}, headers=user.headers),
            await client.delete(target, headers=user.headers),
        ]:
            _assert_problem(response, 403, "insufficient_scope")
            assert response.headers["www-authenticate"] == (
                'Bearer error="insufficient_scope", scope="admin"'
            )
        assert (await client.get("/api/v1/users/me", headers=user.headers)).json()["role"] == "user"

    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/users")
        _assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        _assert_problem(
            await client.delete(f"/api/v1/users/{uuid.uuid4()}"), 401, "not_authenticated"
        )

    async def test_admin_tokens_carry_the_admin_scope(self, admin: Account) -> None:
        assert admin.tokens["scope"] == "user admin"


class TestList:
    async def test_pages_yield_every_user_once_newest_first(
        self, client: httpx.AsyncClient, admin: Account, prefix: str
    ) -> None:
        created = [(await register(client, f"{prefix}{i}@example.com"))["id"] for i in range(5)]
        seen: list[str] = []
        sizes: list[int] = []
        params: dict[str, Any] = {"email_prefix": prefix, "limit": 2}
        while True:
            response = await client.get("/api/v1/users", params=params, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            sizes.append(len(body["items"]))
            seen += [item["id"] for item in body["items"]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert sizes == [2, 2, 1]
        assert seen == created[::-1]

    async def test_ascending_order_and_default_limit(
        self, client: httpx.AsyncClient, admin: Account, prefix: str
    ) -> None:
        created = [(await register(client, f"{prefix}{i}@example.com"))["id"] for i in range(3)]
        first = await client.get(
            "/api/v1/users",
            params={"email_prefix": prefix, "sort": "created_at", "limit": 2},
            headers=admin.headers,
        )
        body = first.json()
        rest = await _ids(
            client, admin, email_prefix=prefix, sort="created_at", cursor=body["next_cursor"]
        )
        assert [item["id"] for item in body["items"]] + rest == created
        assert await _ids(client, admin, email_prefix=prefix) == created[::-1]

    async def test_filters_work_alone_and_combined(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        admin: Account,
        prefix: str,
    ) -> None:
        plain = (await register(client, f"{prefix}plain@example.com"))["id"]
        verified = (await register(client, f"{prefix}verified@example.com"))["id"]
        inactive = (await register(client, f"{prefix}inactive@example.com"))["id"]
        boss = (await register(client, f"{prefix}boss@example.com"))["id"]
        await _set(db_session, verified, is_verified=True)
        await _set(db_session, inactive, is_active=False)
        await _set(db_session, boss, role=Role.ADMIN, is_verified=True)

        async def ids(**params: Any) -> set[str]:
            return set(await _ids(client, admin, email_prefix=prefix, **params))

        assert await ids() == {plain, verified, inactive, boss}
        assert await ids(is_verified=True) == {verified, boss}
        assert await ids(is_verified=False) == {plain, inactive}
        assert await ids(is_active=False) == {inactive}
        assert await ids(is_active=True) == {plain, verified, boss}
        assert await ids(role="admin") == {boss}
        assert await ids(role="user", is_verified=True) == {verified}
        assert await ids(role="user", is_active=True, is_verified=False) == {plain}
        assert set(await _ids(client, admin, email_prefix=prefix.upper() + "V")) == {verified}
        assert await _ids(client, admin, email_prefix=prefix + "nobody") == []

    async def test_like_wildcards_in_the_prefix_match_literally(
        self, client: httpx.AsyncClient, admin: Account, prefix: str
    ) -> None:
        percent = (await register(client, f"{prefix}a%b@example.com"))["id"]
        underscore = (await register(client, f"{prefix}a_b@example.com"))["id"]
        other = (await register(client, f"{prefix}axb@example.com"))["id"]
        assert await _ids(client, admin, email_prefix=f"{prefix}a%") == [percent]
        assert await _ids(client, admin, email_prefix=f"{prefix}a_") == [underscore]
        assert await _ids(client, admin, email_prefix=f"{prefix}ax") == [other]
        assert await _ids(client, admin, email_prefix=f"{prefix[:-1]}%") == []

    @pytest.mark.parametrize(
        "params",
        [{"limit": 101}, {"limit": 0}, {"sort": "email"}, {"role": "root"}, {"email_prefix": ""}],
    )
    async def test_invalid_parameters_are_422(
        self, client: httpx.AsyncClient, admin: Account, params: dict[str, Any]
    ) -> None:
        response = await client.get("/api/v1/users", params=params, headers=admin.headers)
        _assert_problem(response, 422, "validation_error")

    async def test_limit_100_is_allowed(self, client: httpx.AsyncClient, admin: Account) -> None:
        response = await client.get("/api/v1/users?limit=100", headers=admin.headers)
        assert response.status_code == 200

    @pytest.mark.parametrize("cursor", ["garbage!", "eyJ4IjoxfQ", "x" * 600])
    async def test_a_bad_cursor_is_a_problem(
        self, client: httpx.AsyncClient, admin: Account, cursor: str
    ) -> None:
        response = await client.get(
            "/api/v1/users", params={"cursor": cursor}, headers=admin.headers
        )
        assert response.status_code in {400, 422}
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["error"] in {"invalid_cursor", "validation_error"}

    async def test_a_cursor_from_the_other_sort_is_invalid(
        self, client: httpx.AsyncClient, admin: Account, prefix: str
    ) -> None:
        for i in range(2):
            await register(client, f"{prefix}{i}@example.com")
        page = await client.get(
            "/api/v1/users", params={"email_prefix": prefix, "limit": 1}, headers=admin.headers
        )
        cursor = page.json()["next_cursor"]
        response = await client.get(
            "/api/v1/users",
            params={"email_prefix": prefix, "sort": "created_at", "cursor": cursor},
            headers=admin.headers,
        )
        _assert_problem(response, 400, "invalid_cursor")


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
        _assert_problem(response, 404, "user_not_found")
        response = await client.get("/api/v1/users/not-a-uuid", headers=admin.headers)
        _assert_problem(response, 422, "validation_error")

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
            _assert_problem(
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
        _assert_problem(denied, 401, "invalid_credentials")
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
        _assert_problem(response, 422, "validation_error")

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient, admin: Account) -> None:
        response = await client.patch(
            f"/api/v1/users/{uuid.uuid4()}", json={"is_verified": True}, headers=admin.headers
        )
        _assert_problem(response, 404, "user_not_found")


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
        _assert_problem(stale, 412, "precondition_failed")
        weak = await client.patch(
            url, json={"role": "admin"}, headers={**admin.headers, "If-Match": 'W/"2"'}
        )
        _assert_problem(weak, 412, "precondition_failed")
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
        _assert_problem(response, 412, "precondition_failed")

    async def test_delete_honours_if_match(self, client: httpx.AsyncClient, admin: Account) -> None:
        user = await register(client)
        url = f"/api/v1/users/{user['id']}"
        stale = await client.delete(url, headers={**admin.headers, "If-Match": '"7"'})
        _assert_problem(stale, 412, "precondition_failed")
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
        _assert_problem(await client.get(url, headers=admin.headers), 404, "user_not_found")
        _assert_problem(
            await client.post("/api/v1/auth/logout", headers=user.headers), 401, "invalid_token"
        )
        denied = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        _assert_problem(denied, 401, "invalid_credentials")
        _assert_problem(await client.delete(url, headers=admin.headers), 404, "user_not_found")


class TestSelfProtection:
    @pytest.mark.parametrize("body", [{"is_active": False}, {"role": "user"}])
    async def test_an_admin_cannot_deactivate_or_demote_themselves(
        self, client: httpx.AsyncClient, admin: Account, body: dict[str, Any]
    ) -> None:
        response = await client.patch(f"/api/v1/users/{admin.id}", json=body, headers=admin.headers)
        _assert_problem(response, 409, "cannot_modify_self")
        me = await client.get("/api/v1/users/me", headers=admin.headers)
        assert me.status_code == 200
        assert me.json()["role"] == "admin"
        assert me.json()["is_active"] is True

    async def test_an_admin_cannot_delete_themselves(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        response = await client.delete(f"/api/v1/users/{admin.id}", headers=admin.headers)
        _assert_problem(response, 409, "cannot_modify_self")
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
        _assert_problem(
            await client.get("/api/v1/users", headers=other.headers), 401, "invalid_token"
        )
