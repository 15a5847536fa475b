"""Service to service: the notification service reads users through ``servicekit.client``.

Its ``UserDirectory`` uses a client-credentials token of its own, against the user service
run as a real process (migrated and started by its own command): a user is read with a
cached token, a disabled client is refused within a second, and an outage opens the
circuit breaker, which closes again once the user service is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from notification_service.config import NotificationServiceSettings
from notification_service.main import create_app
from notification_service.models import Delivery, Recipient, inbox
from notification_service.services.directory import UserDirectory
from servicekit.client import (
    CircuitOpen,
    ClientCredentials,
    CredentialsRejected,
    ServiceClient,
    UpstreamError,
    UpstreamUnavailable,
)
from servicekit.redis import AnyRedis
from servicekit.testing import Backends, app_client
from servicekit.testing.process import ServiceProcess, free_port
from servicekit.testing.smtp import SmtpSink, body_of

from ..utils.events import publish

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
BREAKER_RESET_S = 2.0


class UserService:
    """``user-service serve`` on PostgreSQL and Redis, restartable on the same port."""

    def __init__(self, env: dict[str, str | None], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: ServiceProcess | None = None

    def migrate(self) -> None:
        """``user-service migrate`` on the run's database (this suite may run before its own)."""
        env = {**os.environ, **{k: v for k, v in self.env.items() if v is not None}}
        subprocess.run(
            [str(BIN / "user-service"), "migrate"], env=env, check=True, capture_output=True,
            timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        argv = [str(BIN / "user-service"), "serve"]
        self.process = ServiceProcess(argv, self.log, self.env, port=self.port)
        self.process.wait_ready()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def cli(self, *args: str) -> dict[str, Any]:
        """``user-service clients …`` against the same database and Redis; its JSON answer."""
        env = {**os.environ, **{k: v for k, v in self.env.items() if v is not None}}
        done = subprocess.run(
            [str(BIN / "user-service"), "clients", *args],
            env=env, check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        return answer


@pytest.fixture(scope="module")
def user_service(
    database_url: str, servicekit_backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UserService]:
    tmp = tmp_path_factory.mktemp("s2s")
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": servicekit_backends.redis_url,
        "USER_SERVICE_REDIS__KEY_PREFIX": f"{servicekit_backends.redis_key_prefix}s2s:",
        "DATA_DIR": str(tmp / "data"),
        "WORKERS": "1",
        # One key across restarts, so a token issued before a restart still verifies.
        "USER_SERVICE_JWT__PRIVATE_KEY": _signing_key(),
        "USER_SERVICE_RATE_LIMIT__ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
    service = UserService(env, tmp / "serve.log")
    service.migrate()
    service.start()
    yield service
    service.kill()


def _signing_key() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture
async def notification_service(
    user_service: UserService,
) -> AsyncIterator[tuple[UserDirectory, str]]:
    """The caller's directory (a registered client with ``users:read``), a user to read."""
    client_id = f"notification-{uuid.uuid4().hex[:8]}"
    secret = user_service.cli("create", client_id, "--scope", "users:read")["client_secret"]
    async with httpx.AsyncClient(base_url=user_service.base_url) as http:
        email = f"s2s-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "correct horse battery", "full_name": "Ada"}
        registered = await http.post("/api/v1/users", json=body)
        assert registered.status_code == 201, registered.text
        credentials = ClientCredentials(
            http,
            token_url=f"{user_service.base_url}/oauth/token",
            client_id=client_id,
            client_secret=SecretStr(secret),
        )
        users = ServiceClient(
            "user_service",
            user_service.base_url,
            credentials=credentials,
            timeout_s=2.0,
            attempts=2,
            breaker_threshold=3,
            breaker_reset_s=BREAKER_RESET_S,
        )
        try:
            yield UserDirectory(users, http), registered.json()["id"]
        finally:
            await users.aclose()


async def test_reads_a_user_with_its_own_token(
    notification_service: tuple[UserDirectory, str],
) -> None:
    directory, user_id = notification_service
    users = directory.users
    contact = await directory.contact(uuid.UUID(user_id))
    assert contact is not None
    assert contact.full_name == "Ada"
    assert contact.email.startswith("s2s-")
    assert await directory.contact(uuid.uuid4()) is None  # unknown: the events' address then
    await users.get_json(f"/api/v1/users/{user_id}")
    assert users.credentials is not None
    assert users.credentials.fetches == 1  # the token is cached
    with pytest.raises(UpstreamError) as missing:
        await users.get_json(f"/api/v1/users/{uuid.uuid4()}")
    assert getattr(missing.value, "problem_code", None) == "user_not_found"


async def test_disabling_the_client_fails_the_next_call_within_a_second(
    user_service: UserService, notification_service: tuple[UserDirectory, str]
) -> None:
    directory, user_id = notification_service
    users = directory.users
    await users.get_json(f"/api/v1/users/{user_id}")
    assert users.credentials is not None
    user_service.cli("disable", users.credentials.client_id)
    disabled_at = time.monotonic()

    async def call_until_refused() -> None:
        while time.monotonic() - disabled_at < 1.0:
            await users.get_json(f"/api/v1/users/{user_id}")
            await asyncio.sleep(0.05)

    # Its cached token is refused (revoked), and a new one is refused as well.
    with pytest.raises(CredentialsRejected):
        await call_until_refused()
    assert time.monotonic() - disabled_at < 1.0


async def test_an_outage_opens_the_breaker_and_recovery_closes_it(
    user_service: UserService, notification_service: tuple[UserDirectory, str]
) -> None:
    directory, user_id = notification_service
    users = directory.users
    await users.get_json(f"/api/v1/users/{user_id}")
    user_service.kill()
    outage_started = time.monotonic()
    try:
        failures: list[type[Exception]] = []
        while CircuitOpen not in failures:
            with pytest.raises(UpstreamUnavailable) as failed:
                await users.get_json(f"/api/v1/users/{user_id}")
            failures.append(type(failed.value))
        assert len(failures) <= 3  # opened after the threshold of failed attempts
        started = time.perf_counter()
        with pytest.raises(CircuitOpen):  # fails fast: nothing is sent
            await users.get_json(f"/api/v1/users/{user_id}")
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - outage_started)))
    finally:
        user_service.start()
    await asyncio.sleep(BREAKER_RESET_S)  # the breaker lets a trial call through again
    user = await users.get_json(f"/api/v1/users/{user_id}")
    assert user["full_name"] == "Ada"
    await users.get_json(f"/api/v1/users/{user_id}")  # closed: calls flow again


async def test_the_courier_mails_the_address_and_name_the_user_service_has_now(
    user_service: UserService,
    settings: NotificationServiceSettings,
    redis_client: AnyRedis,
    smtp_sink: SmtpSink,
    db_engine: AsyncEngine,
) -> None:
    client_id = f"courier-{uuid.uuid4().hex[:8]}"
    secret = user_service.cli("create", client_id, "--scope", "users:read")["client_secret"]
    async with httpx.AsyncClient(base_url=user_service.base_url) as http:
        email = f"now-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "correct horse battery", "full_name": "Ada Now"}
        registered = await http.post("/api/v1/users", json=body)
        assert registered.status_code == 201, registered.text
    users = settings.users.model_copy(
        update={
            "url": user_service.base_url,
            "client_id": client_id,
            "client_secret": SecretStr(secret),
        }
    )
    app = create_app(settings.model_copy(update={"users": users}))
    user_id = registered.json()["id"]
    stale = {"user_id": user_id, "email": "stale@example.com", "full_name": "Old Name"}
    async with app_client(app):
        await publish(redis_client, settings, "user.registered.v1", stale)
        changed = {"user_id": user_id, "email": "stale@example.com", "method": "changed"}
        await publish(redis_client, settings, "user.password_changed.v1", changed)
        message = await smtp_sink.wait_for(f"Ada Now <{email}>", timeout_s=15)
    assert body_of(message).startswith("Hello Ada Now,")
    assert smtp_sink.to("Old Name <stale@example.com>") == []
    async with db_engine.begin() as conn:
        for model in (Delivery, Recipient):
            await conn.execute(delete(model))
        await conn.execute(delete(inbox.events))
