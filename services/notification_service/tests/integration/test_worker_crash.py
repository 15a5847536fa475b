"""A worker killed while it sends, then the mail server down for 30 s: no mail lost or doubled.

``notification-service worker`` runs as a real process against the run's database and Redis.
The SMTP server holds every ``RCPT TO`` a while, and the worker is killed while one is held;
the server then stops for 30 s while a second worker retries with backoff, and once it is
back every mail arrives exactly once.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from notification_service.config import NotificationServiceSettings
from servicekit.redis import AnyRedis
from servicekit.testing.process import ServiceProcess, free_port
from servicekit.testing.smtp import SmtpSink

from ..utils.events import link_request, publish

pytestmark = pytest.mark.integration

WORKER = Path(sys.executable).parent / "notification-service"
MAILS = 4
SMTP_DOWN_S = 30.0


def start_worker(
    tmp_path: Path, settings: NotificationServiceSettings, name: str, metrics_port: int = 0
) -> ServiceProcess:
    smtp, courier, redis = settings.email.smtp, settings.courier, settings.redis
    assert redis.url is not None
    return ServiceProcess(
        [str(WORKER), "worker"],
        log_path=tmp_path / f"{name}.log",
        env={
            "DATABASE_URL": settings.database.url,
            "REDIS_URL": redis.url,
            "NOTIFICATION_SERVICE_REDIS__KEY_PREFIX": redis.key_prefix,
            "NOTIFICATION_SERVICE_REDIS__CLUSTER": "true" if redis.cluster else "false",
            "NOTIFICATION_SERVICE_EMAIL__BACKEND": "smtp",
            "NOTIFICATION_SERVICE_EMAIL__FRONTEND_URL": "http://users.test",
            "NOTIFICATION_SERVICE_EMAIL__SMTP__HOST": smtp.host,
            "NOTIFICATION_SERVICE_EMAIL__SMTP__PORT": str(smtp.port),
            "NOTIFICATION_SERVICE_EMAIL__SMTP__START_TLS": "false",
            "NOTIFICATION_SERVICE_EMAIL__SMTP__TIMEOUT_S": "2",
            "NOTIFICATION_SERVICE_COURIER__LEASE_S": str(courier.lease_s),
            "NOTIFICATION_SERVICE_COURIER__BACKOFF_BASE_S": "1",
            "NOTIFICATION_SERVICE_COURIER__BACKOFF_MAX_S": "4",
            "NOTIFICATION_SERVICE_COURIER__MAX_ATTEMPTS": "20",
            "NOTIFICATION_SERVICE_COURIER__POLL_INTERVAL_S": "0.2",
            "NOTIFICATION_SERVICE_CONSUMER__CLAIM_IDLE_MS": "1000",
            "NOTIFICATION_SERVICE_SERVER__METRICS_PORT": str(metrics_port),
        },
    )


async def test_a_killed_worker_and_a_30_s_smtp_outage_deliver_every_mail_once(
    tmp_path: Path,
    settings: NotificationServiceSettings,
    redis_client: AnyRedis,
    smtp_sink: SmtpSink,
) -> None:
    addresses = [f"crash-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(MAILS)]
    for n, address in enumerate(addresses):
        data = link_request(settings, uuid.uuid4(), address, f"token-{n}")
        await publish(redis_client, settings, "user.email_verification_requested.v1", data)
    smtp_sink.rcpt_delay_s = 5.0
    first = start_worker(tmp_path, settings, "worker-1")
    second: ServiceProcess | None = None
    try:
        assert await asyncio.to_thread(smtp_sink.holding.wait, 30), first.output()
        first.kill()  # SIGKILL while the server holds its RCPT TO: that mail is not sent
        smtp_sink.stop()
        smtp_sink.rcpt_delay_s = 0.0
        metrics_port = free_port()
        second = start_worker(tmp_path, settings, "worker-2", metrics_port)
        await asyncio.sleep(SMTP_DOWN_S)  # it retries with backoff meanwhile
        smtp_sink.start()
        for address in addresses:
            await smtp_sink.wait_for(f"Ada Lovelace <{address}>", timeout_s=30)
        await asyncio.sleep(2)  # room for a duplicate to show up
        received = Counter(str(m["To"]).rsplit("<", 1)[-1].rstrip(">") for m in smtp_sink.messages)
        assert received == dict.fromkeys(addresses, 1), second.output()
        async with httpx.AsyncClient() as client:  # the worker is scraped like a server
            scraped = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        sent = 'notification_deliveries_total{kind="verify_email",outcome="sent"}'
        assert f"{sent} {float(MAILS)}" in scraped
    finally:
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.output()  # SIGTERM: a clean stop
