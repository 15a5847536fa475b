"""Payloads of TOTP enrolment, the second sign-in step and re-authentication."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from user_service.schemas.user import PasswordConfirmation

#: A TOTP code (6 digits) or a recovery code (``xxxxx-xxxxx``, any case, hyphen optional).
MfaCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=6,
        max_length=11,
        pattern=r"^([0-9]{6}|[A-Za-z2-7]{5}-?[A-Za-z2-7]{5})$",
    ),
    Field(
        description="A 6-digit code from the authenticator app, or a recovery code.",
        examples=["123456", "abcde-fgh23"],
    ),
]
#: Only a TOTP code (confirming an enrolment proves the app has the secret).
TotpCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$"),
    Field(description="A 6-digit code from the authenticator app."),
]


class TotpEnrolment(BaseModel):
    """A pending TOTP secret: add it to an authenticator app, then confirm with a code."""

    secret: str = Field(description="The base32 secret, for typing it in by hand.")
    otpauth_uri: str = Field(description="The `otpauth://totp/…` URI (RFC 6238 key URI).")
    qr_svg: str = Field(description="The URI as a QR code, an SVG document.")


class TotpConfirm(BaseModel):
    """The first code from the app, which switches TOTP on."""

    model_config = ConfigDict(extra="forbid")

    code: TotpCode = Field(repr=False)


class TotpDisable(PasswordConfirmation):
    """The password and a code (TOTP or recovery), which switch TOTP off."""

    code: MfaCode = Field(repr=False)


class RecoveryCodes(BaseModel):
    """Single-use recovery codes, shown this once (only their hashes are kept)."""

    recovery_codes: list[str]


class MfaVerify(BaseModel):
    """The second step of a sign-in with TOTP on."""

    model_config = ConfigDict(extra="forbid")

    mfa_token: str = Field(min_length=16, max_length=256, repr=False)
    code: MfaCode = Field(repr=False)


class Reauthenticate(PasswordConfirmation):
    """Prove the user again (step-up): the password, and a code when TOTP is on."""

    code: MfaCode | None = Field(None, repr=False)
