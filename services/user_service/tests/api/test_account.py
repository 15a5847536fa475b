"""Email verification and password reset, the tokens read from the events asking for the mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.testing import app_client
from user_service.config import UserServiceSettings
from user_service.main import create_app
from user_service.models import TokenPurpose, User, outbox

from ..utils.auth import bearer, login
from ..utils.links import requested_tokens, stored_link_token
from ..utils.users import LIVE_PREFIX, PASSWORD, live_email, register

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a brand new passphrase"
VERIFY = "/api/v1/auth/verify-email"
RESET = "/api/v1/auth/password-reset"


RequestLink = Callable[..., Awaitable[str]]
PURPOSES = {VERIFY: TokenPurpose.VERIFY_EMAIL, RESET: TokenPurpose.PASSWORD_RESET}


@pytest.fixture
def request_link(
    client: httpx.AsyncClient, db_session: AsyncSession, settings: UserServiceSettings
) -> RequestLink:
    """Ask for a link; returns the token of the ``count``-th link asked for that address.

    The token is read as the notification service reads it: from the request's event.
    """

    async def request(base: str, email: str, count: int = 1) -> str:
        response = await client.post(f"{base}/request", json={"email": email})
        assert response.status_code == 202, response.text
        tokens = await requested_tokens(db_session, settings, PURPOSES[base], email)
        assert len(tokens) == count, tokens
        return tokens[-1]

    return request


def _without_request_id(response: httpx.Response) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "request_id"}


def _assert_invalid_link(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_or_expired_link"


class TestEmailVerification:
    async def test_the_requested_link_verifies_the_account(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        user = await register(client)
        assert user["is_verified"] is False
        token = await request_link(VERIFY, user["email"])
        confirmed = await client.post(f"{VERIFY}/confirm", json={"token": token})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["is_verified"] is True
        me = await client.get(
            "/api/v1/users/me", headers=bearer(await login(client, user["email"]))
        )
        assert me.json()["is_verified"] is True

    async def test_a_link_works_once(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        user = await register(client)
        token = await request_link(VERIFY, user["email"])
        assert (await client.post(f"{VERIFY}/confirm", json={"token": token})).status_code == 200
        _assert_invalid_link(await client.post(f"{VERIFY}/confirm", json={"token": token}))

    async def test_a_new_request_voids_the_earlier_link(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        user = await register(client)
        first = await request_link(VERIFY, user["email"])
        second = await request_link(VERIFY, user["email"], count=2)
        _assert_invalid_link(await client.post(f"{VERIFY}/confirm", json={"token": first}))
        assert (await client.post(f"{VERIFY}/confirm", json={"token": second})).status_code == 200

    async def test_an_expired_link_is_rejected(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await register(client)
        token = await stored_link_token(
            db_session, user, TokenPurpose.VERIFY_EMAIL, expires_in_s=-1
        )
        _assert_invalid_link(await client.post(f"{VERIFY}/confirm", json={"token": token}))

    async def test_unknown_tokens_and_wrong_purposes_are_rejected(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        _assert_invalid_link(await client.post(f"{VERIFY}/confirm", json={"token": "x" * 43}))
        user = await register(client)
        token = await request_link(VERIFY, user["email"])
        reset = await client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        _assert_invalid_link(reset)


class TestPasswordReset:
    async def test_reset_sets_the_password_and_ends_every_session(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        user = await register(client)
        old = await login(client, user["email"])
        token = await request_link(RESET, user["email"])

        response = await client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 204, response.text

        assert (await client.get("/api/v1/users/me", headers=bearer(old))).status_code == 401
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert refresh.status_code == 401
        with_old = await client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert with_old.status_code == 401
        new = await login(client, user["email"], NEW_PASSWORD)
        me = await client.get("/api/v1/users/me", headers=bearer(new))
        assert me.status_code == 200
        assert me.json()["is_verified"] is False  # a reset proves the mailbox, but is no verify
        _assert_invalid_link(
            await client.post(
                f"{RESET}/confirm", json={"token": token, "new_password": "yet another one"}
            )
        )

    async def test_a_weak_password_keeps_the_link_usable(
        self, client: httpx.AsyncClient, request_link: RequestLink
    ) -> None:
        user = await register(client)
        token = await request_link(RESET, user["email"])
        weak = await client.post(f"{RESET}/confirm", json={"token": token, "new_password": "short"})
        assert weak.status_code == 422
        assert weak.json()["error"] == "password_policy"
        good = await client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert good.status_code == 204


class TestNoEnumeration:
    @pytest.mark.parametrize("base", [VERIFY, RESET])
    async def test_unknown_and_known_addresses_get_the_same_answer(
        self, client: httpx.AsyncClient, base: str
    ) -> None:
        user = await register(client)
        known = await client.post(f"{base}/request", json={"email": user["email"]})
        unknown = await client.post(f"{base}/request", json={"email": "nobody@example.com"})
        assert known.status_code == unknown.status_code == 202
        assert _without_request_id(known) == _without_request_id(unknown)
        assert known.headers["content-length"] == unknown.headers["content-length"]

    async def test_a_malformed_address_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{RESET}/request", json={"email": "not an address"})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["email"]


class TestConcurrentConfirmation:
    async def test_racing_confirmations_use_a_link_once(
        self, live_client: httpx.AsyncClient, settings: UserServiceSettings, db_engine: AsyncEngine
    ) -> None:
        email = live_email()
        await register(live_client, email)
        asked = await live_client.post(f"{RESET}/request", json={"email": email})
        assert asked.status_code == 202
        (token,) = await requested_tokens(db_engine, settings, TokenPurpose.PASSWORD_RESET, email)
        responses = await asyncio.gather(
            *(
                live_client.post(
                    f"{RESET}/confirm", json={"token": token, "new_password": f"{NEW_PASSWORD} {i}"}
                )
                for i in range(6)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [204] + [400] * 5, statuses
        winner = next(i for i, r in enumerate(responses) if r.status_code == 204)
        await login(live_client, email, f"{NEW_PASSWORD} {winner}")


def _queries(response: httpx.Response) -> str:
    """The database queries the request ran, from its ``Server-Timing`` header."""
    return response.headers["server-timing"].split('desc="')[1].split('"')[0]


class TestEnumerationSafeMode:
    """``enumeration_safe``: neither answers nor their work tell which addresses exist."""

    @pytest.fixture
    async def safe_client(
        self, settings: UserServiceSettings, db_engine: AsyncEngine
    ) -> AsyncIterator[httpx.AsyncClient]:
        """Committing for real: the lookups after the response use their own sessions."""
        safe = settings.model_copy(update={"enumeration_safe": True})
        async with app_client(create_app(safe)) as client:
            yield client
        async with db_engine.begin() as conn:
            await conn.execute(delete(User).where(User.email.like(f"{LIVE_PREFIX}%")))

    async def test_a_known_address_registers_like_a_new_one_and_its_owner_is_told(
        self, safe_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        email = live_email()
        first = await safe_client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        again = await safe_client.post(
            "/api/v1/users", json={"email": email.upper(), "password": NEW_PASSWORD}
        )
        assert first.status_code == again.status_code == 201, again.text
        assert set(first.headers) == set(again.headers)
        varying = {"id", "created_at", "updated_at"}
        assert {k: v for k, v in again.json().items() if k not in varying} == {
            k: v for k, v in first.json().items() if k not in varying
        }
        assert again.headers["location"] == f"/api/v1/users/{again.json()['id']}"
        async with db_engine.connect() as conn:
            told = await conn.scalar(
                select(func.count()).where(
                    outbox.events.c.type == "user.registration_attempted.v1",
                    outbox.events.c.partition_key == f"user/{first.json()['id']}",
                )
            )
        assert told == 1  # the event the notification service mails the owner from
        await login(safe_client, email)  # the owner's password is untouched

    @pytest.mark.parametrize("base", [RESET, VERIFY])
    async def test_link_requests_do_the_same_work_for_known_and_unknown_addresses(
        self,
        safe_client: httpx.AsyncClient,
        settings: UserServiceSettings,
        db_engine: AsyncEngine,
        base: str,
    ) -> None:
        email = live_email()
        await register(safe_client, email)
        known = await safe_client.post(f"{base}/request", json={"email": email})
        unknown = await safe_client.post(f"{base}/request", json={"email": live_email()})
        assert known.status_code == unknown.status_code == 202
        assert _without_request_id(known) == _without_request_id(unknown)
        assert _queries(known) == _queries(unknown)  # the lookup ran after the response
        for _ in range(100):  # and still asked for the owner's mail, after the response
            if await requested_tokens(db_engine, settings, PURPOSES[base], email):
                break
            await asyncio.sleep(0.05)
        assert len(await requested_tokens(db_engine, settings, PURPOSES[base], email)) == 1
