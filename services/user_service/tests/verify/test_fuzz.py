"""Schemathesis against the service's own OpenAPI document, served by a real process.

``user-service serve`` runs on the test run's PostgreSQL database and Redis (rate limits and
lockout off, so the fuzzer is never throttled) and schemathesis's CLI exercises every
operation with every check (``--checks all``: no 5xx, schema and status-code conformance,
content types, headers, negative and positive data, auth…), once signed in as a user and
once as an administrator. ``fuzz_hooks`` keeps the token alive, scans every error body for
tracebacks, SQL and secrets, and records the statuses per operation.

Selected by ``make verify`` (``-m verify``); each run takes about a minute.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servicekit.testing import Backends
from servicekit.testing.process import ServiceProcess
from user_service.keys import generate_private_key, private_key_pem

pytestmark = pytest.mark.verify

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
PASSWORD = "fuzzing is fun, " + secrets.token_hex(8)
INTROSPECTION = ("fuzz", secrets.token_urlsafe(32))
MAX_EXAMPLES = 40
#: Operations each identity must reach with a 2xx: proof that authentication was wired in.
#: Introspection is checked in the user's run: the administrator's run may fuzz the clients
#: API into rotating or disabling the introspection client.
MUST_REACH = {
    "user": [
        "GET /api/v1/users/me",
        "GET /api/v1/users/me/sessions",
        "PATCH /api/v1/users/me",
        "POST /oauth/introspect",
    ],
    "admin": ["GET /api/v1/users", "GET /api/v1/users/me", "GET /api/v1/clients"],
}


class Service:
    """The running process and the secrets it must never reveal."""

    def __init__(self, process: ServiceProcess, secret_values: list[str]) -> None:
        self.process = process
        self.secrets = secret_values


@pytest.fixture(scope="module")
def service(
    database_url: str, servicekit_backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("fuzz")
    pem = private_key_pem(generate_private_key("EdDSA")).decode()
    secret_key = secrets.token_urlsafe(48)
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": servicekit_backends.redis_url,
        "USER_SERVICE_REDIS__KEY_PREFIX": f"{servicekit_backends.redis_key_prefix}fuzz:",
        "DATA_DIR": str(tmp / "data"),
        "WORKERS": "1",
        "USER_SERVICE_SECRET_KEY": secret_key,
        "EVENT_SEAL_KEYS": json.dumps([secret_key]),
        "USER_SERVICE_JWT__PRIVATE_KEY": pem,
        "USER_SERVICE_RATE_LIMIT__ENABLED": "false",
        "USER_SERVICE_LOCKOUT__ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
    process = ServiceProcess([str(BIN / "user-service"), "serve"], tmp / "serve.log", env)
    try:
        process.wait_ready()
        subprocess.run(  # the introspection caller: an OAuth client with a known secret
            [str(BIN / "user-service"), "clients", "create", INTROSPECTION[0], "--secret-stdin"],
            input=INTROSPECTION[1] + "\n",
            env={**os.environ, "DATABASE_URL": database_url},
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        key_body = "".join(pem.strip().splitlines()[1:-1])
        yield Service(process, [PASSWORD, secret_key, INTROSPECTION[1], key_body, database_url])
    finally:
        process.kill()


def _account(service: Service, role: str, database_url: str) -> str:
    """A fresh account of ``role``; returns its email."""
    email = f"fuzz-{role}-{uuid.uuid4().hex[:8]}@example.com"
    if role == "admin":
        subprocess.run(
            [str(BIN / "user-service"), "create-admin", "--email", email, "--password-stdin"],
            input=PASSWORD + "\n",
            env={**os.environ, "DATABASE_URL": database_url},
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    else:
        response = httpx.post(
            f"{service.process.base_url}/api/v1/users",
            json={"email": email, "password": PASSWORD},
            timeout=30,
        )
        assert response.status_code == 201, response.text
    return email


@pytest.mark.parametrize("role", ["user", "admin"])
def test_every_operation_passes_every_check(
    service: Service, database_url: str, role: str, tmp_path: Path
) -> None:
    email = _account(service, role, database_url)
    reach = tmp_path / "reach.json"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": str(HERE),
        "FUZZ_BASE_URL": service.process.base_url,
        "FUZZ_EMAIL": email,
        "FUZZ_PASSWORD": PASSWORD,
        "FUZZ_INTROSPECTION": ":".join(INTROSPECTION),
        "FUZZ_SECRETS": "\n".join(service.secrets),
        "FUZZ_REACH": str(reach),
    }
    # fmt: off
    argv = [
        str(BIN / "schemathesis"), "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{service.process.base_url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--no-shrink",
        "--request-timeout", "30", "--report", "junit", "--report-dir", str(tmp_path),
    ]
    # fmt: on
    run = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    failures = run.stdout.partition("= FAILURES =")[2].partition("= WARNINGS =")[0]
    report = f"{failures[:12000]}\n{run.stdout[-2500:]}\n{run.stderr[-2000:]}"
    assert run.returncode == 0, f"schemathesis found problems:\n{report}"

    statuses: dict[str, list[int]] = json.loads(reach.read_text())
    operations = httpx.get(f"{service.process.base_url}/openapi.json", timeout=30).json()["paths"]
    documented = {f"{m.upper()} {path}" for path, item in operations.items() for m in item}
    assert documented <= set(statuses), f"never exercised: {documented - set(statuses)}"
    for label in MUST_REACH[role]:
        assert any(200 <= s < 300 for s in statuses[label]), (label, statuses[label])
    assert all(s < 500 for codes in statuses.values() for s in codes), statuses
