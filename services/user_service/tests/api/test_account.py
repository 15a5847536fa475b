"""Email verification and password reset, read back from a real SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.testing import app_client, override_db_session
from servicekit.testing.process import free_port
from user_service.config import SmtpSettings, UserServiceSettings
from user_service.main import create_app
from user_service.models import TokenPurpose, User

from ..utils.auth import bearer, login
from ..utils.links import stored_link_token
from ..utils.smtp_sink import SmtpSink, body_of, token_in
from ..utils.users import LIVE_PREFIX, PASSWORD, live_email, register

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a brand new passphrase"
VERIFY = "/api/v1/auth/verify-email"
RESET = "/api/v1/auth/password-reset"


async def _smtp_client(
    settings: UserServiceSettings, db_session: AsyncSession | None, port: int
) -> AsyncIterator[httpx.AsyncClient]:
    """An app mailing through SMTP on ``port``; without ``db_session`` it commits for real."""
    smtp = SmtpSettings(host="127.0.0.1", port=port, start_tls=False, timeout_s=5)
    email = settings.email.model_copy(update={"backend": "smtp", "smtp": smtp})
    app = create_app(settings.model_copy(update={"email": email}))
    if db_session is not None:
        override_db_session(app, db_session)
    async with app_client(app) as client:
        yield client


@pytest.fixture
async def mail_client(
    settings: UserServiceSettings, db_session: AsyncSession, smtp_sink: SmtpSink
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose mail goes to ``smtp_sink``."""
    async for client in _smtp_client(settings, db_session, smtp_sink.port):
        yield client


def _without_request_id(response: httpx.Response) -> dict[str, Any]:
    return {k: v for k, v in response.json().items() if k != "request_id"}


async def _request_link(
    client: httpx.AsyncClient, sink: SmtpSink, base: str, email: str, count: int = 1
) -> str:
    response = await client.post(f"{base}/request", json={"email": email})
    assert response.status_code == 202, response.text
    return token_in(await sink.wait_for(email, count=count))


def _assert_invalid_link(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_or_expired_link"


class TestEmailVerification:
    async def test_mailed_link_verifies_the_account(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        user = await register(mail_client)
        assert user["is_verified"] is False
        response = await mail_client.post(f"{VERIFY}/request", json={"email": user["email"]})
        assert response.status_code == 202
        message = await smtp_sink.wait_for(user["email"])
        assert message["Subject"] == "Confirm your email address"
        assert message["From"] == "no-reply@localhost"
        assert "http://127.0.0.1:8000/verify-email?token=" in body_of(message)

        confirmed = await mail_client.post(f"{VERIFY}/confirm", json={"token": token_in(message)})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["is_verified"] is True
        me = await mail_client.get(
            "/api/v1/users/me", headers=bearer(await login(mail_client, user["email"]))
        )
        assert me.json()["is_verified"] is True

    async def test_a_link_works_once(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        user = await register(mail_client)
        token = await _request_link(mail_client, smtp_sink, VERIFY, user["email"])
        assert (
            await mail_client.post(f"{VERIFY}/confirm", json={"token": token})
        ).status_code == 200
        _assert_invalid_link(await mail_client.post(f"{VERIFY}/confirm", json={"token": token}))

    async def test_a_new_request_voids_the_earlier_link(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        user = await register(mail_client)
        first = await _request_link(mail_client, smtp_sink, VERIFY, user["email"])
        second = await _request_link(mail_client, smtp_sink, VERIFY, user["email"], count=2)
        _assert_invalid_link(await mail_client.post(f"{VERIFY}/confirm", json={"token": first}))
        assert (
            await mail_client.post(f"{VERIFY}/confirm", json={"token": second})
        ).status_code == 200

    async def test_an_expired_link_is_rejected(
        self, client: httpx.AsyncClient, db_session: AsyncSession
    ) -> None:
        user = await register(client)
        token = await stored_link_token(
            db_session, user, TokenPurpose.VERIFY_EMAIL, expires_in_s=-1
        )
        _assert_invalid_link(await client.post(f"{VERIFY}/confirm", json={"token": token}))

    async def test_unknown_tokens_and_wrong_purposes_are_rejected(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        _assert_invalid_link(await mail_client.post(f"{VERIFY}/confirm", json={"token": "x" * 43}))
        user = await register(mail_client)
        token = await _request_link(mail_client, smtp_sink, VERIFY, user["email"])
        reset = await mail_client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        _assert_invalid_link(reset)


class TestPasswordReset:
    async def test_reset_sets_the_password_and_ends_every_session(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        user = await register(mail_client)
        old = await login(mail_client, user["email"])
        token = await _request_link(mail_client, smtp_sink, RESET, user["email"])
        message = smtp_sink.to(user["email"])[0]
        assert message["Subject"] == "Reset your password"
        assert "/reset-password?token=" in body_of(message)
        assert "30 minutes" in body_of(message)

        response = await mail_client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 204, response.text

        assert (await mail_client.get("/api/v1/users/me", headers=bearer(old))).status_code == 401
        refresh = await mail_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert refresh.status_code == 401
        with_old = await mail_client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert with_old.status_code == 401
        new = await login(mail_client, user["email"], NEW_PASSWORD)
        me = await mail_client.get("/api/v1/users/me", headers=bearer(new))
        assert me.status_code == 200
        assert me.json()["is_verified"] is False  # a reset proves the mailbox, but is no verify
        _assert_invalid_link(
            await mail_client.post(
                f"{RESET}/confirm", json={"token": token, "new_password": "yet another one"}
            )
        )

    async def test_a_weak_password_keeps_the_link_usable(
        self, mail_client: httpx.AsyncClient, smtp_sink: SmtpSink
    ) -> None:
        user = await register(mail_client)
        token = await _request_link(mail_client, smtp_sink, RESET, user["email"])
        weak = await mail_client.post(
            f"{RESET}/confirm", json={"token": token, "new_password": "short"}
        )
        assert weak.status_code == 422
        assert weak.json()["error"] == "password_policy"
        good = await mail_client.post(
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


class TestDeliveryFailure:
    async def test_an_unreachable_mail_server_does_not_fail_the_request(
        self, settings: UserServiceSettings, db_session: AsyncSession
    ) -> None:
        async for client in _smtp_client(settings, db_session, free_port()):
            user = await register(client)
            response = await client.post(f"{RESET}/request", json={"email": user["email"]})
            assert response.status_code == 202


class TestConcurrentConfirmation:
    async def test_racing_confirmations_use_a_link_once(
        self, settings: UserServiceSettings, db_engine: AsyncEngine, smtp_sink: SmtpSink
    ) -> None:
        email = f"race-{uuid.uuid4().hex[:12]}@example.com"
        try:
            async for client in _smtp_client(settings, None, smtp_sink.port):
                await register(client, email)
                token = await _request_link(client, smtp_sink, RESET, email)
                responses = await asyncio.gather(
                    *(
                        client.post(
                            f"{RESET}/confirm",
                            json={"token": token, "new_password": f"{NEW_PASSWORD} {i}"},
                        )
                        for i in range(6)
                    )
                )
                statuses = sorted(r.status_code for r in responses)
                assert statuses == [204] + [400] * 5, statuses
                winner = next(i for i, r in enumerate(responses) if r.status_code == 204)
                await login(client, email, f"{NEW_PASSWORD} {winner}")
        finally:
            async with db_engine.begin() as conn:
                await conn.execute(delete(User).where(User.email == email))


def _queries(response: httpx.Response) -> str:
    """The database queries the request ran, from its ``Server-Timing`` header."""
    return response.headers["server-timing"].split('desc="')[1].split('"')[0]


class TestEnumerationSafeMode:
    """``enumeration_safe``: neither answers nor their work tell which addresses exist."""

    @pytest.fixture
    async def safe_client(
        self, settings: UserServiceSettings, smtp_sink: SmtpSink, db_engine: AsyncEngine
    ) -> AsyncIterator[httpx.AsyncClient]:
        """Committing for real: the lookups after the response use their own sessions."""
        safe = settings.model_copy(update={"enumeration_safe": True})
        async for client in _smtp_client(safe, None, smtp_sink.port):
            yield client
        async with db_engine.begin() as conn:
            await conn.execute(delete(User).where(User.email.like(f"{LIVE_PREFIX}%")))

    async def test_a_known_address_registers_like_a_new_one_and_its_owner_is_told(
        self, safe_client: httpx.AsyncClient, smtp_sink: SmtpSink
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
        notice = await smtp_sink.wait_for(email)
        assert notice["Subject"] == "Your account already exists"
        assert "/reset-password" in body_of(notice)
        await login(safe_client, email)  # the owner's password is untouched

    @pytest.mark.parametrize("base", [RESET, VERIFY])
    async def test_link_requests_do_the_same_work_for_known_and_unknown_addresses(
        self, safe_client: httpx.AsyncClient, smtp_sink: SmtpSink, base: str
    ) -> None:
        email = live_email()
        await register(safe_client, email)
        known = await safe_client.post(f"{base}/request", json={"email": email})
        unknown = await safe_client.post(f"{base}/request", json={"email": live_email()})
        assert known.status_code == unknown.status_code == 202
        assert _without_request_id(known) == _without_request_id(unknown)
        assert _queries(known) == _queries(unknown)  # the lookup ran after the response
        message = await smtp_sink.wait_for(email)  # and still mailed the owner
        assert token_in(message)
