"""Admin API: scope guard and cursor listing with filters."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import orjson
import pytest

from servicekit.db import AsyncSession
from user_service.models import Role

from ..utils.admin import Account, account, listed_ids, set_user_columns
from ..utils.problems import assert_problem
from ..utils.users import register

pytestmark = pytest.mark.integration


def _cursor(payload: dict[str, Any]) -> str:
    """A cursor as the service encodes one, with whatever position a client forged."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


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
            assert_problem(response, 403, "insufficient_scope")
            # Reading one user also admits a service with `users:read`.
            scope = (
                "admin users:read"
                if response.request.method == "GET" and (response.request.url.path == target)
                else "admin"
            )
            assert response.headers["www-authenticate"] == (
                f'Bearer error="insufficient_scope", scope="{scope}"'
            )
        assert (await client.get("/api/v1/users/me", headers=user.headers)).json()["role"] == "user"

    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/users")
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_problem(
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
        rest = await listed_ids(
            client, admin, email_prefix=prefix, sort="created_at", cursor=body["next_cursor"]
        )
        assert [item["id"] for item in body["items"]] + rest == created
        assert await listed_ids(client, admin, email_prefix=prefix) == created[::-1]

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
        await set_user_columns(db_session, verified, is_verified=True)
        await set_user_columns(db_session, inactive, is_active=False)
        await set_user_columns(db_session, boss, role=Role.ADMIN, is_verified=True)

        async def ids(**params: Any) -> set[str]:
            return set(await listed_ids(client, admin, email_prefix=prefix, **params))

        assert await ids() == {plain, verified, inactive, boss}
        assert await ids(is_verified=True) == {verified, boss}
        assert await ids(is_verified=False) == {plain, inactive}
        assert await ids(is_active=False) == {inactive}
        assert await ids(is_active=True) == {plain, verified, boss}
        assert await ids(role="admin") == {boss}
        assert await ids(role="user", is_verified=True) == {verified}
        assert await ids(role="user", is_active=True, is_verified=False) == {plain}
        assert set(await listed_ids(client, admin, email_prefix=prefix.upper() + "V")) == {verified}
        assert await listed_ids(client, admin, email_prefix=prefix + "nobody") == []

    async def test_like_wildcards_in_the_prefix_match_literally(
        self, client: httpx.AsyncClient, admin: Account, prefix: str
    ) -> None:
        percent = (await register(client, f"{prefix}a%b@example.com"))["id"]
        underscore = (await register(client, f"{prefix}a_b@example.com"))["id"]
        other = (await register(client, f"{prefix}axb@example.com"))["id"]
        assert await listed_ids(client, admin, email_prefix=f"{prefix}a%") == [percent]
        assert await listed_ids(client, admin, email_prefix=f"{prefix}a_") == [underscore]
        assert await listed_ids(client, admin, email_prefix=f"{prefix}ax") == [other]
        assert await listed_ids(client, admin, email_prefix=f"{prefix[:-1]}%") == []

    @pytest.mark.parametrize(
        "params",
        [{"limit": 101}, {"limit": 0}, {"sort": "email"}, {"role": "root"}, {"email_prefix": ""}],
    )
    async def test_invalid_parameters_are_422(
        self, client: httpx.AsyncClient, admin: Account, params: dict[str, Any]
    ) -> None:
        response = await client.get("/api/v1/users", params=params, headers=admin.headers)
        assert_problem(response, 422, "validation_error")

    async def test_a_nul_in_the_prefix_is_422(
        self, client: httpx.AsyncClient, admin: Account
    ) -> None:
        # Found by the fuzz run as a 500: PostgreSQL holds no NUL in text.
        params = {"email_prefix": "a\x00b"}
        response = await client.get("/api/v1/users", params=params, headers=admin.headers)
        assert_problem(response, 422, "validation_error")
        assert response.json()["errors"][0]["field"] == "email_prefix"

    async def test_limit_100_is_allowed(self, client: httpx.AsyncClient, admin: Account) -> None:
        response = await client.get("/api/v1/users?limit=100", headers=admin.headers)
        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("cursor", "status", "error"),
        [
            pytest.param("garbage!", 400, "invalid_cursor", id="not-base64"),
            pytest.param("eyJ4IjoxfQ", 400, "invalid_cursor", id="foreign-json"),  # {"x":1}
            # Well-formed, but an integer id for a UUID column, or a time outside UTC's range:
            # these reached SQL and answered 500.
            pytest.param(
                _cursor({"t": "2024-01-01T00:00:00+00:00", "i": 1, "d": "desc"}),
                400,
                "invalid_cursor",
                id="integer-id",
            ),
            pytest.param(
                _cursor(
                    {"t": "0001-01-01T00:00:00+05:00", "i": str(uuid.UUID(int=1)), "d": "desc"}
                ),
                400,
                "invalid_cursor",
                id="year-1",
            ),
            pytest.param(
                _cursor(
                    {"t": "9999-12-31T23:00:00-05:00", "i": str(uuid.UUID(int=1)), "d": "desc"}
                ),
                400,
                "invalid_cursor",
                id="year-9999",
            ),
            # Refused by the query's max_length before it is decoded.
            pytest.param("x" * 600, 422, "validation_error", id="too-long"),
        ],
    )
    async def test_a_bad_cursor_is_a_problem(
        self, client: httpx.AsyncClient, admin: Account, cursor: str, status: int, error: str
    ) -> None:
        response = await client.get(
            "/api/v1/users", params={"cursor": cursor}, headers=admin.headers
        )
        assert_problem(response, status, error)
        if error == "validation_error":
            assert [e["field"] for e in response.json()["errors"]] == ["cursor"]

    @pytest.mark.parametrize("at", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
    async def test_a_cursor_at_the_ends_of_time_is_a_valid_position(
        self, client: httpx.AsyncClient, admin: Account, at: str
    ) -> None:
        cursor = _cursor({"t": at, "i": str(uuid.UUID(int=0)), "d": "desc"})
        response = await client.get(
            "/api/v1/users", params={"cursor": cursor}, headers=admin.headers
        )
        assert response.status_code == 200, response.text

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
        assert_problem(response, 400, "invalid_cursor")
