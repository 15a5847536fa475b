"""The email senders against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import aiosmtplib
import pytest

from servicekit.observability.logging import configure_logging
from servicekit.settings import Environment
from servicekit.testing.process import free_port
from user_service.config import EmailSettings, SmtpSettings, UserServiceSettings
from user_service.email import (
    BackgroundEmailSender,
    ConsoleEmailSender,
    OutgoingEmail,
    SmtpEmailSender,
    build_email_sender,
)

from ..utils.smtp_sink import SmtpSink, body_of

pytestmark = pytest.mark.integration

MESSAGE = OutgoingEmail(
    to="ada@example.com",
    subject="Reset your password",
    text="Open https://app.example.com/reset-password?token=abc to continue.\n",
    kind="password_reset",
    link="https://app.example.com/reset-password?token=abc",
)


@pytest.fixture
def logged(
    settings: UserServiceSettings, caplog: pytest.LogCaptureFixture
) -> Callable[[str], list[dict[str, Any]]]:
    """The structlog events of a name written so far in the test."""
    configure_logging(settings)  # structlog through the standard library, where caplog listens
    caplog.set_level(logging.INFO)

    def events(name: str) -> list[dict[str, Any]]:
        return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == name]

    return events


def _smtp(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, start_tls=False, timeout_s=2)


class TestSmtpEmailSender:
    async def test_the_server_receives_the_message(self, smtp_sink: SmtpSink) -> None:
        sender = SmtpEmailSender(
            _smtp(smtp_sink.port), from_address="Accounts <no-reply@example.com>"
        )
        await sender.send(MESSAGE)
        [received] = smtp_sink.to("ada@example.com")
        assert received["From"] == "Accounts <no-reply@example.com>"
        assert received["Subject"] == "Reset your password"
        assert re.fullmatch(r"<[^<>@]+@example\.com>", received["Message-ID"])
        assert received["Date"]
        assert body_of(received) == MESSAGE.text

    async def test_an_unreachable_server_raises(self) -> None:
        sender = SmtpEmailSender(_smtp(free_port()), from_address="no-reply@example.com")
        with pytest.raises((aiosmtplib.SMTPException, OSError)):
            await sender.send(MESSAGE)


class TestBackgroundEmailSender:
    async def test_send_returns_before_delivery_and_aclose_waits(self, smtp_sink: SmtpSink) -> None:
        sender = BackgroundEmailSender(
            SmtpEmailSender(_smtp(smtp_sink.port), from_address="no-reply@example.com")
        )
        await sender.send(MESSAGE)
        await sender.aclose()
        assert len(smtp_sink.to("ada@example.com")) == 1

    async def test_a_failed_delivery_is_logged_not_raised(
        self, logged: Callable[[str], list[dict[str, Any]]]
    ) -> None:
        sender = BackgroundEmailSender(
            SmtpEmailSender(_smtp(free_port()), from_address="no-reply@example.com")
        )
        await sender.send(MESSAGE)
        await sender.aclose()
        [failed] = logged("email.send_failed")
        assert failed["kind"] == "password_reset"

    async def test_a_slow_delivery_is_cancelled_at_close(
        self, logged: Callable[[str], list[dict[str, Any]]]
    ) -> None:
        class Hanging:
            """A transport that never finishes, recording the delivery task and its cancel."""

            def __init__(self) -> None:
                self.started = asyncio.Event()
                self.task: asyncio.Task[Any] | None = None
                self.cancelled = False

            async def send(self, message: OutgoingEmail) -> None:
                self.task = asyncio.current_task()
                self.started.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancelled = True
                    raise

        hanging = Hanging()
        sender = BackgroundEmailSender(hanging)
        await sender.send(MESSAGE)
        await asyncio.wait_for(hanging.started.wait(), timeout=1)  # the delivery is under way
        assert hanging.task is not None
        assert not hanging.task.done()

        await asyncio.wait_for(sender.aclose(timeout_s=0.05), timeout=1)

        assert hanging.cancelled, "the pending delivery was not cancelled"
        assert hanging.task.cancelled()
        [cancelled] = logged("email.send_cancelled")
        assert cancelled["count"] == 1


class TestConsoleEmailSender:
    @pytest.mark.parametrize("show_links", [True, False])
    async def test_the_link_is_logged_only_when_shown(
        self, logged: Callable[[str], list[dict[str, Any]]], show_links: bool
    ) -> None:
        await ConsoleEmailSender(show_links=show_links).send(MESSAGE)
        [sent] = logged("email.sent")
        assert sent["kind"] == "password_reset"
        assert sent["subject"] == "Reset your password"
        assert ("link" in sent) is show_links
        assert ("to" in sent) is show_links
        assert sent.get("link") in {None, MESSAGE.link}


class TestBuildEmailSender:
    def test_the_backend_comes_from_settings(self, settings: UserServiceSettings) -> None:
        smtp = settings.model_copy(
            update={"email": EmailSettings(backend="smtp", smtp=_smtp(2525))}
        )
        assert isinstance(build_email_sender(smtp), SmtpEmailSender)
        console = build_email_sender(settings)
        assert isinstance(console, ConsoleEmailSender)
        assert console.show_links is True
        production = settings.model_copy(update={"environment": Environment.PRODUCTION})
        sender = build_email_sender(production)
        assert isinstance(sender, ConsoleEmailSender)
        assert sender.show_links is False

    def test_implicit_tls_and_starttls_are_exclusive(self) -> None:
        with pytest.raises(ValueError, match="exclusive"):
            SmtpSettings(use_tls=True, start_tls=True)
