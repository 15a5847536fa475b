"""Schemathesis hooks for the fuzz run (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

* **Authentication**: introspection gets the ``FUZZ_INTROSPECTION`` (``id:secret``) service
  credentials; every other case carries a live access token of the account named by
  ``FUZZ_EMAIL`` / ``FUZZ_PASSWORD``. Fuzzed ``logout`` and ``logout-all`` calls revoke it, so
  the token is checked before each case (a cached ``GET /users/me``) and renewed by signing in
  again when it stopped working.
* **Unique idempotency keys** (``before_call``): see there.
* **No leaks** (``error_bodies_leak_nothing``): every 4xx/5xx body is scanned for tracebacks,
  SQL, driver names and the run's secrets (``FUZZ_SECRETS``, one per line).
* **No banner** (``no_server_banner``): no response carries a ``Server`` header.
* **Reach** (``record_reach``): the statuses seen per operation are written to ``FUZZ_REACH``
  (JSON) after the run, so the test can prove protected operations were really exercised.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from schemathesis import AuthContext, Case, CheckContext, HookContext, Response

BASE_URL = os.environ.get("FUZZ_BASE_URL", "http://127.0.0.1:8000")
_SECRETS = [s for s in os.environ.get("FUZZ_SECRETS", "").splitlines() if len(s) >= 8]

#: What must never reach a client: Python tracebacks, source paths, SQL, driver names, keys.
LEAK_PATTERNS = [
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r'File "[^"]+\.py", line \d+'),
    re.compile(r"\b(?:sqlalchemy|asyncpg|psycopg|sqlite3)\b", re.IGNORECASE),
    re.compile(r"\bSELECT\b[^\n]{0,200}\bFROM\b", re.IGNORECASE),
    re.compile(r"\b(?:INSERT INTO|DELETE FROM|UPDATE \w+ SET)\b", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*KEY-----"),
    re.compile(r"\$argon2id?\$|\$2[aby]\$\d\d\$"),  # password hashes
]


def _sign_in() -> str:
    response = httpx.post(
        f"{BASE_URL}/api/v1/auth/login",
        json={"email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]},
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _still_valid(token: str) -> bool:
    response = httpx.get(
        f"{BASE_URL}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code == 200


@schemathesis.auth(refresh_interval=None)
class SignedIn:
    """A bearer token that survives fuzzed sign-outs."""

    def __init__(self) -> None:
        self.token: str | None = None

    def get(self, case: Case[Any], ctx: AuthContext) -> str:
        if self.token is None or not _still_valid(self.token):
            self.token = _sign_in()
        return self.token

    def set(self, case: Case[Any], data: str, ctx: AuthContext) -> None:
        value = f"Bearer {data}"
        if ctx.operation.path == "/oauth/introspect":
            # Service credentials (HTTP Basic), not a user's token; a client authenticates
            # one way only (RFC 6749 §2.3), so the form's own credential fields go.
            client = base64.b64encode(os.environ["FUZZ_INTROSPECTION"].encode()).decode()
            value = f"Basic {client}"
            if isinstance(case.body, dict):
                case.body.pop("client_id", None)
                case.body.pop("client_secret", None)
        case.headers["Authorization"] = value


_WELL_FORMED_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    """A well-formed ``Idempotency-Key`` is made unique, as its contract asks.

    The contract asks for "one value per intended operation"; otherwise the fuzzer's few
    distinct values come back with other bodies and get the documented 422
    ``idempotency_key_mismatch``. Malformed values are sent as generated (negative testing);
    replays are tested in ``tests/api/test_idempotency.py``.
    """
    value = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(value, str) and _WELL_FORMED_KEY.fullmatch(value):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"


def leaks(body: str, instance: str | None = None) -> list[str]:
    """The leak patterns and secrets found in an error body (its echoed path removed)."""
    if instance:
        body = body.replace(instance, "")
    found = [p.pattern for p in LEAK_PATTERNS if p.search(body)]
    found += [f"secret #{i}" for i, secret in enumerate(_SECRETS) if secret in body]
    return found


@schemathesis.check
def error_bodies_leak_nothing(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A 4xx/5xx body holds no traceback, SQL, driver name, password hash or secret."""
    if response.status_code < 400:
        return None
    text = response.content.decode("utf-8", errors="replace")
    instance: str | None = None
    try:
        body: Any = json.loads(text)
        if isinstance(body, dict) and isinstance(body.get("instance"), str):
            instance = body["instance"]
    except ValueError:
        pass
    found = leaks(text, instance)
    if found:
        raise AssertionError(f"error body leaks {found}: {text[:500]}")
    return None


@schemathesis.check
def no_server_banner(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No response names the server software (or its version)."""
    if "server" in {name.lower() for name in response.headers}:
        raise AssertionError(f"Server header sent: {response.headers}")
    return None


@schemathesis.check
class record_reach:
    """Statuses per operation, written to ``FUZZ_REACH`` after the run."""

    def __init__(self) -> None:
        self.statuses: dict[str, set[int]] = {}

    def after_response(self, ctx: CheckContext, response: Response, case: Case[Any]) -> None:
        self.statuses.setdefault(case.operation.label, set()).add(response.status_code)

    def after_run(self, ctx: CheckContext) -> None:
        target = os.environ.get("FUZZ_REACH")
        if target:
            data = {label: sorted(codes) for label, codes in self.statuses.items()}
            Path(target).write_text(json.dumps(data, indent=1, sort_keys=True))
