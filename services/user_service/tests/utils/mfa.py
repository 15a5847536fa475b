"""TOTP in tests: codes from `oathtool` (an independent RFC 6238 implementation)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - runs oathtool with fixed arguments
import time
from typing import Any

import httpx

from .auth import bearer
from .users import PASSWORD

STEP_S = 30
#: A code computed this close to the end of its step waits for the next one, so the
#: server sees the step the test meant.
_MARGIN_S = 2.0


def oathtool_code(secret: str, *, steps: int = 0) -> str:
    """The code of the time step ``steps`` away from now, computed by oathtool."""
    binary = shutil.which("oathtool")
    assert binary, "oathtool is missing: `bash scripts/ensure-tools.sh oathtool` installs it"
    left = STEP_S - time.time() % STEP_S
    if left < _MARGIN_S:
        time.sleep(left + 0.05)
    at = int(time.time()) + steps * STEP_S
    result = subprocess.run(  # nosec B603 - fixed argv, no shell
        [binary, "--totp", "--base32", f"--now=@{at}", secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


def wrong_code(secret: str) -> str:
    """A well-formed code that matches none of the steps the server accepts now."""
    near = {oathtool_code(secret, steps=s) for s in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


async def enrol(client: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    """Start TOTP enrolment; returns the enrolment body (``secret``, ``otpauth_uri``…)."""
    response = await client.post("/api/v1/users/me/mfa/totp", headers=bearer(tokens))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def enable_totp(client: httpx.AsyncClient, tokens: dict[str, Any]) -> tuple[str, list[str]]:
    """Switch TOTP on (confirmed with the previous step's code); returns secret and codes.

    The previous step leaves the current and the next one for the test's sign-ins.
    """
    secret = (await enrol(client, tokens))["secret"]
    response = await client.post(
        "/api/v1/users/me/mfa/totp/confirm",
        json={"code": oathtool_code(secret, steps=-1)},
        headers=bearer(tokens),
    )
    assert response.status_code == 200, response.text
    return secret, response.json()["recovery_codes"]


async def first_step(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in with the password on a TOTP account; returns the ``mfa_token``."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "mfa_required"
    token: str = body["mfa_token"]
    return token


async def second_step(client: httpx.AsyncClient, mfa_token: str, code: str) -> httpx.Response:
    """``POST /auth/mfa/verify``."""
    return await client.post("/api/v1/auth/mfa/verify", json={"mfa_token": mfa_token, "code": code})
