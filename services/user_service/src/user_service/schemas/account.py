"""Payloads of the emailed links: verification, password reset and email change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from user_service.schemas.fields import EmailAddress, NewPassword
from user_service.schemas.user import PasswordConfirmation


class EmailLinkRequest(BaseModel):
    """Ask for a verification or password-reset link to be mailed to ``email``."""

    model_config = ConfigDict(extra="forbid")

    email: EmailAddress


class LinkRequested(BaseModel):
    """The one answer to a link request, whether or not the address has an account."""

    status: Literal["accepted"] = "accepted"
    detail: str = "If an account uses this address, an email with a link is on its way."


class _LinkToken(BaseModel):
    """The token an emailed link carries."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=256, repr=False)


class VerifyEmailConfirm(_LinkToken):
    """The token from a verification link."""


class PasswordResetConfirm(_LinkToken):
    """The token from a reset link and the new password (policy checked by the service)."""

    new_password: NewPassword = Field(repr=False)


class EmailChangeRequest(PasswordConfirmation):
    """Move the account to ``new_email``; the password confirms it is the owner asking."""

    new_email: EmailAddress


class EmailChangeRequested(BaseModel):
    """The answer to an email-change request: the link is on its way to the new address."""

    status: Literal["accepted"] = "accepted"
    detail: str = "A confirmation link is on its way to the new address."


class EmailChangeConfirm(_LinkToken):
    """The token from an email-change link."""
