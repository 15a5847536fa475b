"""``Idempotency-Key`` on registration and password-reset requests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from user_service.models import EmailToken, IdempotencyKey, User

from ..utils.users import PASSWORD, live_email

pytestmark = pytest.mark.integration

USERS = "/api/v1/users"
RESET = "/api/v1/auth/password-reset/request"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _body(email: str | None = None) -> dict[str, str]:
    return {"email": email or f"idem-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}


async def _count_users(session: AsyncSession, email: str) -> int:
    return int(
        (await session.execute(select(func.count()).where(User.email == email))).scalar_one()
    )


async def _stored(session: AsyncSession, key: str) -> IdempotencyKey:
    """The one stored record of ``key``, as in the database now."""
    statement = (
        select(IdempotencyKey)
        .where(IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one()


class TestRegistration:
    async def test_a_retry_gets_the_stored_response_and_creates_nothing(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        key, body = _key(), _body()
        first = await client.post(USERS, json=body, headers=key)
        # Another key order and spacing is the same request.
        again = await client.post(
            USERS,
            content=f'{{ "password": "{PASSWORD}",  "email": "{body["email"]}" }}',
            headers={**key, "content-type": "application/json"},
        )
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await _count_users(db_session, body["email"]) == 1

    async def test_without_a_key_a_retry_is_a_conflict(self, client: httpx.AsyncClient) -> None:
        body = _body()
        assert (await client.post(USERS, json=body)).status_code == 201
        assert (await client.post(USERS, json=body)).status_code == 409

    async def test_the_same_key_with_another_body_is_422(self, client: httpx.AsyncClient) -> None:
        key = _key()
        assert (await client.post(USERS, json=_body(), headers=key)).status_code == 201
        response = await client.post(USERS, json=_body(), headers=key)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "idempotency_key_mismatch"

    async def test_a_failed_request_is_not_stored(self, client: httpx.AsyncClient) -> None:
        key, body = _key(), _body()
        weak = {**body, "password": "short"}
        assert (await client.post(USERS, json=weak, headers=key)).status_code == 422
        # The key was not kept: the fixed request with the same key runs.
        response = await client.post(USERS, json=weak | {"password": PASSWORD}, headers=key)
        assert response.status_code == 201

    async def test_keys_are_scoped_to_the_operation(self, client: httpx.AsyncClient) -> None:
        key, body = _key(), _body()
        assert (await client.post(USERS, json=body, headers=key)).status_code == 201
        response = await client.post(RESET, json={"email": body["email"]}, headers=key)
        assert response.status_code == 202
        assert "idempotent-replayed" not in response.headers

    async def test_an_expired_key_is_replaced(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        key = _key()
        first = _body()
        assert (await client.post(USERS, json=first, headers=key)).status_code == 201
        # 24 hours later (the stored timestamps moved back, no sleeping).
        await db_session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key["Idempotency-Key"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        second = _body()
        response = await client.post(USERS, json=second, headers=key)
        assert response.status_code == 201, response.text  # not 422: the old key is gone
        assert "idempotent-replayed" not in response.headers
        assert response.json()["email"] == second["email"]

    async def test_a_stored_key_expires_24_hours_after_the_request(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        key = _key()
        before = utcnow()
        assert (await client.post(USERS, json=_body(), headers=key)).status_code == 201
        after = utcnow()
        stored = await _stored(db_session, key["Idempotency-Key"])
        assert before <= stored.created_at <= after
        assert stored.expires_at - stored.created_at == timedelta(hours=24)

    @pytest.mark.parametrize(
        ("age", "replayed"),
        [
            pytest.param(timedelta(hours=23, minutes=59), True, id="23h59m-old-replayed"),
            pytest.param(timedelta(hours=24, seconds=1), False, id="24h-old-runs-again"),
        ],
    )
    async def test_a_key_is_replayed_for_24_hours(
        self,
        client: httpx.AsyncClient,
        db_session: AsyncSession,
        age: timedelta,
        replayed: bool,
    ) -> None:
        key, body = _key(), _body()
        first = await client.post(USERS, json=body, headers=key)
        assert first.status_code == 201, first.text
        # The key as it is ``age`` after the request (both timestamps moved back, no sleeping).
        stored = await _stored(db_session, key["Idempotency-Key"])
        await db_session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key["Idempotency-Key"])
            .values(created_at=stored.created_at - age, expires_at=stored.expires_at - age)
        )
        again = await client.post(USERS, json=body, headers=key)
        if replayed:
            assert again.status_code == 201, again.text
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json() == first.json()
        else:  # the key is gone: the registration runs again and meets the existing account
            assert again.status_code == 409, again.text
            assert "idempotent-replayed" not in again.headers
        assert await _count_users(db_session, body["email"]) == 1

    @pytest.mark.parametrize("value", ["", "a" * 256, "has space"])
    async def test_malformed_keys_are_422(self, client: httpx.AsyncClient, value: str) -> None:
        response = await client.post(USERS, json=_body(), headers={"Idempotency-Key": value})
        assert response.status_code == 422

    async def test_the_header_is_documented(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        for path in (USERS, RESET):
            params = schema["paths"][path]["post"]["parameters"]
            assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)


class TestPasswordResetRequest:
    async def test_a_retry_mails_no_second_link(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        body = _body()
        assert (await client.post(USERS, json=body)).status_code == 201
        key = _key()
        first = await client.post(RESET, json={"email": body["email"]}, headers=key)
        tokens = (await db_session.execute(select(EmailToken.token_hash))).scalars().all()
        again = await client.post(RESET, json={"email": body["email"]}, headers=key)
        assert first.status_code == again.status_code == 202
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        # A second request would have replaced the token: the retry did nothing.
        after = (await db_session.execute(select(EmailToken.token_hash))).scalars().all()
        assert sorted(after) == sorted(tokens)

    async def test_another_address_with_the_key_is_422(self, client: httpx.AsyncClient) -> None:
        key = _key()
        assert (await client.post(RESET, json={"email": "a@example.com"}, headers=key)).is_success
        response = await client.post(RESET, json={"email": "b@example.com"}, headers=key)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "idempotency_key_mismatch"


class TestConcurrency:
    async def test_racing_requests_with_one_key_run_once(
        self, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        key, body = _key(), _body(live_email())
        responses = await asyncio.gather(
            *(live_client.post(USERS, json=body, headers=key) for _ in range(6))
        )
        assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 5
        async with AsyncSession(db_engine) as session:
            assert await _count_users(session, body["email"]) == 1
            await session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.key == key["Idempotency-Key"])
            )
            await session.commit()
