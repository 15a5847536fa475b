"""User reads go through the Redis cache, and no write path leaves a stale entry behind.

Every test commits for real (``live_client``): invalidation runs after commit, which the
per-test rolled-back transaction would only imitate.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.redis import AnyRedis
from user_service.config import UserServiceSettings
from user_service.models import Role, TokenPurpose, User
from user_service.schemas.user import UserSnapshot

from ..utils.auth import bearer, login
from ..utils.links import requested_tokens
from ..utils.users import PASSWORD, live_email, register

pytestmark = pytest.mark.integration

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
_QUERIES = re.compile(r'db;dur=[0-9.]+;desc="(\d+) queries"')


def queries(response: httpx.Response) -> int:
    """The SQL statements the request ran, from its ``Server-Timing`` header."""
    match = _QUERIES.search(response.headers["server-timing"])
    assert match is not None, response.headers["server-timing"]
    return int(match.group(1))


def cache_hits() -> float:
    return REGISTRY.get_sample_value("cache_events_total", {"cache": "user", "result": "hit"}) or 0


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    headers: dict[str, str]


async def member(client: httpx.AsyncClient) -> Member:
    user = await register(client, live_email())
    return Member(user["id"], user["email"], bearer(await login(client, user["email"])))


async def administrator(client: httpx.AsyncClient, db_engine: AsyncEngine) -> Member:
    """A user promoted in the database (as ``create-admin`` does), then signed in."""
    user = await register(client, live_email())
    async with db_engine.begin() as conn:
        await conn.execute(
            update(User).where(User.id == uuid.UUID(user["id"])).values(role=Role.ADMIN)
        )
    return Member(user["id"], user["email"], bearer(await login(client, user["email"])))


async def me(client: httpx.AsyncClient, who: Member) -> httpx.Response:
    response = await client.get(ME, headers=who.headers)
    assert response.status_code == 200, response.text
    return response


async def warm_me(client: httpx.AsyncClient, who: Member) -> dict[str, Any]:
    """Read until the entry is cached: the last read ran no SQL."""
    await me(client, who)
    cached = await me(client, who)
    assert queries(cached) == 0
    body: dict[str, Any] = cached.json()
    return body


async def admin_get(client: httpx.AsyncClient, admin: Member, user_id: str) -> httpx.Response:
    return await client.get(f"{USERS}/{user_id}", headers=admin.headers)


async def warm_admin_get(client: httpx.AsyncClient, admin: Member, user_id: str) -> None:
    await admin_get(client, admin, user_id)
    cached = await admin_get(client, admin, user_id)
    assert cached.status_code == 200, cached.text
    assert queries(cached) == 0


class TestHits:
    async def test_a_cached_read_of_me_runs_no_sql(self, live_client: httpx.AsyncClient) -> None:
        user = await member(live_client)
        hits = cache_hits()

        first = await me(live_client, user)
        second = await me(live_client, user)

        assert queries(first) >= 1, "the miss loads the user"
        assert queries(second) == 0, "the hit reads Redis only (token, denylist, user)"
        assert cache_hits() - hits == 1
        assert second.json() == first.json()
        assert second.headers["etag"] == first.headers["etag"]
        assert "password" not in second.text

    async def test_admin_reads_of_a_user_are_cached_too(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)

        first = await admin_get(live_client, admin, user.id)
        second = await admin_get(live_client, admin, user.id)
        own = await me(live_client, user)  # the same entry serves the user's own read

        assert first.status_code == second.status_code == 200
        assert queries(first) >= 1
        assert queries(second) == 0
        assert queries(own) == 0
        assert second.json() == first.json() == own.json()

    async def test_an_unknown_id_is_cached_as_absent(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        missing = str(uuid.uuid4())
        first = await admin_get(live_client, admin, missing)
        second = await admin_get(live_client, admin, missing)
        assert first.status_code == second.status_code == 404
        assert queries(first) >= 1
        assert queries(second) == 0


class TestNoStaleReadAfterWrites:
    async def test_profile_update(self, live_client: httpx.AsyncClient) -> None:
        user = await member(live_client)
        await warm_me(live_client, user)

        patched = await live_client.patch(ME, json={"full_name": "Ada"}, headers=user.headers)
        assert patched.status_code == 200, patched.text

        after = await me(live_client, user)
        assert after.json()["full_name"] == "Ada"
        assert after.headers["etag"] == patched.headers["etag"]

    async def test_admin_update_of_flags_and_role(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        assert (await warm_me(live_client, user))["is_verified"] is False
        await warm_admin_get(live_client, admin, user.id)

        verified = await live_client.patch(
            f"{USERS}/{user.id}", json={"is_verified": True}, headers=admin.headers
        )
        assert verified.status_code == 200, verified.text
        assert (await admin_get(live_client, admin, user.id)).json()["is_verified"] is True
        assert (await me(live_client, user)).json()["is_verified"] is True

        await warm_admin_get(live_client, admin, user.id)
        promoted = await live_client.patch(
            f"{USERS}/{user.id}", json={"role": "admin"}, headers=admin.headers
        )
        assert promoted.status_code == 200, promoted.text
        read = await admin_get(live_client, admin, user.id)
        assert read.json()["role"] == "admin"
        assert read.headers["etag"] == promoted.headers["etag"]
        # A role change ends the user's sessions; the new token names the new role.
        assert (await live_client.get(ME, headers=user.headers)).status_code == 401
        again = bearer(await login(live_client, user.email))
        assert (await live_client.get(ME, headers=again)).json()["role"] == "admin"

    async def test_deactivation(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        await warm_me(live_client, user)
        await warm_admin_get(live_client, admin, user.id)

        response = await live_client.patch(
            f"{USERS}/{user.id}", json={"is_active": False}, headers=admin.headers
        )
        assert response.status_code == 200, response.text

        assert (await live_client.get(ME, headers=user.headers)).status_code == 401
        read = await admin_get(live_client, admin, user.id)
        assert read.status_code == 200
        assert read.json()["is_active"] is False

    async def test_deactivation_reactivation_and_deactivation_again(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        for active in (False, True, False):
            await warm_admin_get(live_client, admin, user.id)
            changed = await live_client.patch(
                f"{USERS}/{user.id}", json={"is_active": active}, headers=admin.headers
            )
            assert changed.status_code == 200, changed.text
            assert (await admin_get(live_client, admin, user.id)).json()["is_active"] is active
        assert (await live_client.get(ME, headers=user.headers)).status_code == 401

    async def test_email_verification(
        self, live_client: httpx.AsyncClient, settings: UserServiceSettings, db_engine: AsyncEngine
    ) -> None:
        user = await member(live_client)
        assert (await warm_me(live_client, user))["is_verified"] is False

        requested = await live_client.post(
            "/api/v1/auth/verify-email/request", json={"email": user.email}
        )
        assert requested.status_code == 202, requested.text
        purpose = TokenPurpose.VERIFY_EMAIL
        (token,) = await requested_tokens(db_engine, settings, purpose, user.email)
        confirmed = await live_client.post(
            "/api/v1/auth/verify-email/confirm", json={"token": token}
        )
        assert confirmed.status_code == 200, confirmed.text

        assert (await me(live_client, user)).json()["is_verified"] is True

    async def test_password_change(self, live_client: httpx.AsyncClient) -> None:
        user = await member(live_client)
        await warm_me(live_client, user)
        before = await me(live_client, user)

        changed = await live_client.post(
            "/api/v1/auth/password/change",
            json={"current_password": PASSWORD, "new_password": "a different passphrase"},
            headers=user.headers,
        )
        assert changed.status_code == 204, changed.text

        after = await me(live_client, user)
        assert after.headers["etag"] != before.headers["etag"]
        assert after.json()["updated_at"] != before.json()["updated_at"]
        version = int(before.headers["etag"].strip('"'))
        assert after.headers["etag"] == f'"{version + 1}"'

    async def test_delete_by_an_admin(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        await warm_me(live_client, user)
        await warm_admin_get(live_client, admin, user.id)

        deleted = await live_client.delete(f"{USERS}/{user.id}", headers=admin.headers)
        assert deleted.status_code == 204, deleted.text

        assert (await admin_get(live_client, admin, user.id)).status_code == 404
        assert (await live_client.get(ME, headers=user.headers)).status_code == 401

    async def test_delete_of_ones_own_account(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        await warm_me(live_client, user)
        await warm_admin_get(live_client, admin, user.id)

        deleted = await live_client.request(
            "DELETE", ME, json={"password": PASSWORD}, headers=user.headers
        )
        assert deleted.status_code == 204, deleted.text

        assert (await admin_get(live_client, admin, user.id)).status_code == 404

    async def test_a_write_behind_the_apis_back_is_not_seen_until_the_ttl(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        """The contrast that shows the tests above measure the cache.

        A change made outside the service's sessions is not invalidated, and the cached
        value stays.
        """
        user = await member(live_client)
        await warm_me(live_client, user)
        async with db_engine.begin() as conn:
            await conn.execute(
                update(User).where(User.id == uuid.UUID(user.id)).values(full_name="Sneaky")
            )
        assert (await me(live_client, user)).json()["full_name"] == ""


def offset_s(round_: int) -> float:
    """When a racing read starts: 0-9.5 ms after the write, about a write's duration.

    So over the rounds reads land before, during and after the commit and its invalidation.
    (The narrowest interleaving, a load of the old row stored after the invalidation, is
    forced deterministically in servicekit's test_cache.py.)
    """
    return (round_ % 20) * 0.0005


async def later(delay_s: float, request: Awaitable[httpx.Response]) -> httpx.Response:
    await asyncio.sleep(delay_s)
    return await request


class TestConcurrentUpdateAndRead:
    async def test_no_stale_value_survives_racing_reads(
        self,
        live_client: httpx.AsyncClient,
        db_engine: AsyncEngine,
        redis_client: AnyRedis,
        settings: UserServiceSettings,
    ) -> None:
        admin = await administrator(live_client, db_engine)
        user = await member(live_client)
        key = f"{settings.redis.key_prefix}{settings.service_name}:user:v1:{{{user.id}}}"
        last_etag = ""
        for i in range(20):
            patched, *reads = await asyncio.gather(
                live_client.patch(ME, json={"full_name": f"name-{i}"}, headers=user.headers),
                later(offset_s(i), live_client.get(ME, headers=user.headers)),
                later(offset_s(i + 10), admin_get(live_client, admin, user.id)),
            )
            assert patched.status_code == 200, patched.text
            assert all(read.status_code == 200 for read in reads)
            # Racing reads see the value before or after the write, never anything else.
            before = f"name-{i - 1}" if i else ""
            assert {read.json()["full_name"] for read in reads} <= {before, f"name-{i}"}
            last_etag = patched.headers["etag"]
            # What the cache holds now (looked at without a read that would refill it) is
            # the written value or nothing: a read that loaded the old row before the commit
            # must not have stored it after the invalidation.
            entry = await redis_client.get(key)
            if entry is not None:
                assert UserSnapshot.model_validate_json(entry).full_name == f"name-{i}"

        final = await me(live_client, user)
        assert final.json()["full_name"] == "name-19"
        assert final.headers["etag"] == last_etag
        assert (await admin_get(live_client, admin, user.id)).json()["full_name"] == "name-19"
        cached = await me(live_client, user)  # and what is cached now is that value
        assert queries(cached) == 0
        assert cached.json()["full_name"] == "name-19"
