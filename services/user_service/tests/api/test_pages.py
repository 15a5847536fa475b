"""The pages the mailed links open: a GET shows a form, only its POST uses the token."""

from __future__ import annotations

import httpx
import pytest

from servicekit.db import AsyncSession, commit
from user_service.config import UserServiceSettings
from user_service.models import TokenPurpose

from ..utils.auth import bearer, login
from ..utils.links import requested_tokens, stored_link_token
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


async def test_opening_the_verification_link_does_not_use_it_and_its_button_does(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    user = await register(client)
    token = await stored_link_token(db_session, user, TokenPurpose.VERIFY_EMAIL, expires_in_s=600)
    for _ in range(2):  # a mail scanner prefetching the link, then the user
        page = await client.get(f"/verify-email?token={token}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert f'name="token" value="{token}"' in page.text
    confirmed = await client.post("/verify-email", data={"token": token})
    assert confirmed.status_code == 200
    assert "is confirmed" in confirmed.text
    again = await client.post("/verify-email", data={"token": token})
    assert again.status_code == 400
    assert "invalid, has expired or was already used" in again.text


async def test_the_reset_form_sets_the_password_and_a_weak_one_keeps_the_link(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    user = await register(client)
    token = await stored_link_token(db_session, user, TokenPurpose.PASSWORD_RESET, expires_in_s=600)
    await commit(db_session)  # as issued by an earlier request (a refused reset rolls back)
    form = await client.get(f"/reset-password?token={token}")
    assert 'name="new_password"' in form.text
    weak = await client.post("/reset-password", data={"token": token, "new_password": "short"})
    assert weak.status_code == 422
    done = await client.post(
        "/reset-password", data={"token": token, "new_password": "a brand new passphrase"}
    )
    assert done.status_code == 200, done.text
    await login(client, user["email"], "a brand new passphrase")


async def test_the_email_change_link_asks_before_moving_the_account(
    client: httpx.AsyncClient, db_session: AsyncSession, settings: UserServiceSettings
) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    new_email = f"paged-{user['email']}"
    requested = await client.post(
        "/api/v1/users/me/email-change",
        json={"new_email": new_email, "password": PASSWORD},
        headers=bearer(tokens),
    )
    assert requested.status_code == 202, requested.text
    [token] = await requested_tokens(db_session, settings, TokenPurpose.EMAIL_CHANGE, new_email)
    page = await client.get(f"/confirm-email-change?token={token}")
    assert f'name="token" value="{token}"' in page.text
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.json()["email"] == user["email"]  # opening the link changed nothing
    moved = await client.post("/confirm-email-change", data={"token": token})
    assert moved.status_code == 200, moved.text
    assert new_email in moved.text
    again = await client.post("/confirm-email-change", data={"token": token})
    assert again.status_code == 400


async def test_markup_in_a_token_is_escaped(client: httpx.AsyncClient) -> None:
    page = await client.get('/verify-email?token="><script>alert(1)</script>')
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
