"""Outgoing mail behind a small :class:`EmailSender` interface.

* :class:`ConsoleEmailSender` (development) logs ``email.sent`` with the action link;
* :class:`SmtpEmailSender` hands the message to an SMTP relay with aiosmtplib;
* :class:`BackgroundEmailSender` wraps either so that ``send`` returns at once and the
  delivery runs in a task. A request therefore never waits on the mail server — so its
  timing does not tell whether an address has an account — and a failed delivery is
  logged (``email.send_failed``) instead of failing a request whose data is committed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from user_service.config import SmtpSettings, UserServiceSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class OutgoingEmail:
    """A plain-text message to one recipient."""

    to: str
    subject: str
    text: str
    #: What the mail is for (``verify_email``, ``password_reset``), for the logs.
    kind: str
    #: The action link contained in ``text``; only the development sender logs it.
    link: str | None = None


class EmailSender(Protocol):
    """Delivers one message; raises when the message could not be handed over."""

    async def send(self, message: OutgoingEmail) -> None:
        """Deliver ``message``."""
        ...


class ConsoleEmailSender:
    """Logs messages instead of sending them.

    ``show_links`` is off in production so a token never reaches the logs there.
    """

    def __init__(self, *, show_links: bool = False) -> None:
        self.show_links = show_links

    async def send(self, message: OutgoingEmail) -> None:
        """Write ``email.sent`` (with recipient and link when ``show_links``)."""
        details = {"to": message.to, "link": message.link} if self.show_links else {}
        log.info(
            "email.sent", backend="console", kind=message.kind, subject=message.subject, **details
        )


class SmtpEmailSender:
    """Sends through the configured SMTP relay, one connection per message."""

    def __init__(self, settings: SmtpSettings, *, from_address: str) -> None:
        self.settings = settings
        self.from_address = from_address

    def build(self, message: OutgoingEmail) -> EmailMessage:
        """The MIME message for ``message``."""
        mime = EmailMessage()
        mime["From"] = self.from_address
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(utcnow())
        domain = parseaddr(self.from_address)[1].rpartition("@")[2]
        mime["Message-ID"] = make_msgid(domain=domain or None)
        mime.set_content(message.text)
        return mime

    async def send(self, message: OutgoingEmail) -> None:
        """Hand ``message`` to the relay; raises ``aiosmtplib.SMTPException`` or ``OSError``."""
        smtp = self.settings
        mime = self.build(message)
        await aiosmtplib.send(
            mime,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            use_tls=smtp.use_tls,
            start_tls=smtp.start_tls,
            timeout=smtp.timeout_s,
        )
        log.info("email.sent", backend="smtp", kind=message.kind, message_id=mime["Message-ID"])


class BackgroundEmailSender:
    """Accepts messages at once and delivers them in tasks; :meth:`aclose` waits for them."""

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, message: OutgoingEmail) -> None:
        """Start delivering ``message`` and return without waiting."""
        task = asyncio.create_task(self._deliver(message), name=f"email-{message.kind}")
        self._tasks.add(task)  # a reference, or the task may be garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: OutgoingEmail) -> None:
        try:
            await self.sender.send(message)
        except Exception as exc:  # logged: the request that queued it has already succeeded
            log.warning("email.send_failed", kind=message.kind, error=repr(exc))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Let deliveries under way finish (graceful shutdown); cancel those that overrun."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("email.send_cancelled", count=len(pending))


def build_email_sender(settings: UserServiceSettings) -> EmailSender:
    """The transport chosen by ``email.backend`` (not yet wrapped for the background)."""
    email = settings.email
    if email.backend == "smtp":
        return SmtpEmailSender(email.smtp, from_address=email.from_address)
    if settings.is_production:
        log.warning("email.console_backend_in_production")
    return ConsoleEmailSender(show_links=not settings.is_production)
