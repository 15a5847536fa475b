"""TOTP (RFC 6238) with pyotp, recovery codes, and the enrolment QR code (segno).

Codes are 6 digits over 30-second steps (what every authenticator app defaults to). A code
is checked against the current step and one on either side (clock drift), and the step it
matched is returned so the caller can refuse it the second time.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time

import pyotp
import segno

DIGITS = 6
PERIOD_S = 30
#: Steps accepted on either side of the current one.
DRIFT_STEPS = 1
#: Recovery codes: 10 characters of base32 (50 bits), shown as ``xxxxx-xxxxx``.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 10


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI authenticator apps scan."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_S).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code (error correction M), ready to inline in a page."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


def current_step(now: float | None = None) -> int:
    """The RFC 6238 time step of ``now`` (Unix seconds)."""
    return int((time.time() if now is None else now) // PERIOD_S)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The step within the drift window whose code is ``code``, or ``None``.

    Every candidate is compared (in constant time), so the answer's timing does not say
    which step matched.
    """
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_S)
    step = current_step(now)
    found = None
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            found = candidate
    return found


def is_totp_code(code: str) -> bool:
    """Whether ``code`` has the shape of a TOTP code (else it may be a recovery code)."""
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def new_recovery_code() -> str:
    """A random recovery code, ``xxxxx-xxxxx``."""
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_recovery_code(code: str) -> str:
    """The canonical form of a typed recovery code: lower case, without the hyphen."""
    return code.replace("-", "").replace(" ", "").lower()


def recovery_code_hash(secret_key: str, code: str) -> str:
    """What is stored of a recovery code: an HMAC under the service's secret key.

    Keyed, not a plain hash: 50 bits are few enough that a leaked table of unkeyed hashes
    could be searched exhaustively.
    """
    message = b"recovery-code\x00" + normalize_recovery_code(code).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
