"""The whole system as ``make run`` starts it, driven over HTTP and SMTP like a user would.

Register → the verification mail arrives through a real SMTP server → its link's page and
button confirm the address → the welcome mail arrives → the notification service lists both
mails → after logout it refuses the access token within a second → Ctrl-C leaves no process.
On PostgreSQL + Redis when the run has them, else on the embedded defaults (a SQLite file per
service and the one Redis ``make run`` starts itself).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from notification_service.cli import MIGRATIONS as NOTIFICATION_MIGRATIONS
from servicekit.db.migrations import upgrade
from servicekit.testing import Backends
from servicekit.testing.process import ServiceProcess, free_port
from servicekit.testing.smtp import SmtpSink, body_of
from user_service.cli import MIGRATIONS as USER_MIGRATIONS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
LINK = re.compile(r"(http://\S+/verify-email\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def backend_env(backends: Backends, database_url: str) -> dict[str, str | None]:
    """Where the two services keep their data: the run's servers, or nothing configured."""
    if backends.embedded_redis is not None or backends.database_kind == "sqlite":
        return {"DATABASE_URL": None, "NOTIFICATION_DATABASE_URL": None, "REDIS_URL": None}
    for migrations in (USER_MIGRATIONS, NOTIFICATION_MIGRATIONS):
        upgrade(migrations, database_url)  # their tables side by side in the run's database
    redis = backends.redis_settings()
    cluster = "true" if redis.cluster else "false"
    return {
        "DATABASE_URL": database_url,
        "NOTIFICATION_DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "USER_SERVICE_REDIS__KEY_PREFIX": redis.key_prefix,
        "NOTIFICATION_SERVICE_REDIS__KEY_PREFIX": redis.key_prefix,
        "USER_SERVICE_REDIS__CLUSTER": cluster,
        "NOTIFICATION_SERVICE_REDIS__CLUSTER": cluster,
    }


@pytest.fixture
def system(
    tmp_path: Path, servicekit_backends: Backends, database_url: str, smtp_sink: SmtpSink
) -> Iterator[tuple[ServiceProcess, str]]:
    """``scripts/run_system.py`` (``make run``); the notification service's base URL."""
    notification_port = free_port()
    process = ServiceProcess(
        [sys.executable, str(ROOT / "scripts" / "run_system.py")],
        log_path=tmp_path / "system.log",
        env={
            **backend_env(servicekit_backends, database_url),
            "DATA_DIR": str(tmp_path / "data"),
            "NOTIFICATION_PORT": str(notification_port),
            "NOTIFICATION_SERVICE_EMAIL__BACKEND": "smtp",
            "NOTIFICATION_SERVICE_EMAIL__SMTP__HOST": "127.0.0.1",
            "NOTIFICATION_SERVICE_EMAIL__SMTP__PORT": str(smtp_sink.port),
            "NOTIFICATION_SERVICE_EMAIL__SMTP__START_TLS": "false",
        },
    )
    notifications = f"http://127.0.0.1:{notification_port}"
    try:
        process.wait_ready()
        process.wait_ready(base_url=notifications)
        yield process, notifications
    finally:
        process.kill()


async def test_register_verify_welcome_list_logout_then_ctrl_c(
    system: tuple[ServiceProcess, str], smtp_sink: SmtpSink
) -> None:
    process, notifications = system
    await _sign_up_and_read_the_mail(process.base_url, notifications, smtp_sink)
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    assert len(tree) >= 3  # the supervisor and both services (and the Redis when embedded)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=40) == 0, process.output()
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], alive


async def _sign_up_and_read_the_mail(
    users_url: str, notifications: str, smtp_sink: SmtpSink
) -> None:
    email = f"system-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=users_url, timeout=10) as users:
        created = await users.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        asked = await users.post("/api/v1/auth/verify-email/request", json={"email": email})
        assert asked.status_code == 202, asked.text
        mail = await smtp_sink.wait_for(email, timeout_s=15)
        assert mail["Subject"] == "Confirm your email address"
        match = LINK.search(body_of(mail))
        assert match is not None, body_of(mail)
        page = await users.get(match.group(1))  # the link as mailed
        assert page.status_code == 200, page.text
        token = match.group(1).rsplit("token=", 1)[1]
        confirmed = await users.post("/verify-email", data={"token": token})
        assert confirmed.status_code == 200, confirmed.text
        welcome = await smtp_sink.wait_for(email, count=2, timeout_s=15)
        assert welcome["Subject"] == "Welcome"
        signed_in = await users.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        async with httpx.AsyncClient(base_url=notifications, timeout=10) as mailbox:
            listed = await mailbox.get("/api/v1/notifications", headers=headers)
            assert listed.status_code == 200, listed.text
            kinds = [(n["kind"], n["status"]) for n in listed.json()["items"]]
            assert ("verify_email", "sent") in kinds
            assert ("welcome", "sent") in kinds
            assert (await users.post("/api/v1/auth/logout", headers=headers)).status_code == 204
            deadline, status = time.monotonic() + 1.0, 200
            while status != 401 and time.monotonic() < deadline:
                status = (await mailbox.get("/api/v1/notifications", headers=headers)).status_code
                await asyncio.sleep(0.02)
            assert status == 401
