"""The pages the links in mails open: verification, password reset and email change.

Opening a link only shows a form: a mail scanner that fetches every link must not use the
token up. The form posts to the same path, which redeems the token through the same
service as the JSON API and answers with a page. They make a link clicked in development
work without a front end; a product with its own front end points
``NOTIFICATION_SERVICE_EMAIL__FRONTEND_URL`` at it instead.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse

from servicekit.db import AsyncSession, rollback
from servicekit.errors import AppError
from user_service.deps import AccountRecovery, DbSession, EmailChange

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Query(min_length=1, max_length=200)]
FormToken = Annotated[str, Form(min_length=1, max_length=200)]


def _page(title: str, body: str, *, status_code: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code)


def _form(action: str, token: str, button: str, fields: str = "") -> str:
    return (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="token" value="{escape(token)}">{fields}'
        f'<button type="submit">{escape(button)}</button></form>'
    )


async def _failure(session: AsyncSession, error: AppError) -> HTMLResponse:
    # Answered as a page, not raised: undo what the attempt wrote (a reset refused by the
    # password policy leaves its token usable), as the error handler's rollback would.
    await rollback(session)
    return _page(
        "That did not work", f"<p>{escape(error.detail)}</p>", status_code=error.status_code
    )


@router.get("/verify-email")
async def verify_email_page(token: Token) -> HTMLResponse:
    """A button confirming the address (a GET never redeems the token)."""
    return _page("Confirm your email address", _form("/verify-email", token, "Confirm my address"))


@router.post("/verify-email")
async def verify_email(
    token: FormToken, session: DbSession, recovery: AccountRecovery
) -> HTMLResponse:
    """Redeem the verification token."""
    try:
        user = await recovery.confirm_verification(session, token=token)
    except AppError as exc:
        return await _failure(session, exc)
    return _page(
        "Address confirmed", f"<p>{escape(user.email)} is confirmed. You can close this page.</p>"
    )


@router.get("/reset-password")
async def reset_password_page(token: Token) -> HTMLResponse:
    """A form for the new password (a GET never redeems the token)."""
    field = (
        '<p><label>New password <input type="password" name="new_password" '
        'autocomplete="new-password" required></label></p>'
    )
    return _page(
        "Choose a new password", _form("/reset-password", token, "Set the password", field)
    )


@router.post("/reset-password")
async def reset_password(
    token: FormToken,
    new_password: Annotated[str, Form(min_length=1, max_length=1024)],
    session: DbSession,
    recovery: AccountRecovery,
) -> HTMLResponse:
    """Redeem the reset token with the new password; every session of the account ends."""
    try:
        await recovery.reset_password(session, token=token, new_password=new_password)
    except AppError as exc:
        return await _failure(session, exc)
    return _page(
        "Password changed", "<p>Sign in with your new password; other devices were signed out.</p>"
    )


@router.get("/confirm-email-change")
async def confirm_email_change_page(token: Token) -> HTMLResponse:
    """A button moving the account to this address (a GET never redeems the token)."""
    return _page(
        "Confirm your new email address",
        _form("/confirm-email-change", token, "Use this address for my account"),
    )


@router.post("/confirm-email-change")
async def confirm_email_change(
    token: FormToken, session: DbSession, email_change: EmailChange
) -> HTMLResponse:
    """Redeem the email-change token: the account moves; its other sessions end."""
    try:
        user = await email_change.confirm(session, token=token)
    except AppError as exc:
        return await _failure(session, exc)
    return _page(
        "Address changed",
        f"<p>Your account now uses {escape(user.email)}; other devices were signed out.</p>",
    )
