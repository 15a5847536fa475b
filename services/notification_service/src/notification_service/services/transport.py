"""Handing a message to the outside world: an SMTP relay, or the log in development.

A failure is either *temporary* (the server is unreachable, busy or answers 4xx: the
courier tries again later) or *permanent* (5xx, such as an address the server refuses:
retrying cannot help, the delivery fails at once).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from notification_service.config import EmailSettings, SmtpSettings
    from notification_service.services.rendering import RenderedMail

log = get_logger(__name__)


class DeliveryError(Exception):
    """The message was not accepted; ``permanent`` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def build_message(
    mail: RenderedMail, *, sender: str, to: str, name: str, message_id: str
) -> EmailMessage:
    """The MIME message: plain text with an HTML alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((name, to)) if name else to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class MailTransport(Protocol):
    """Delivers one message; returns the server's acceptance, raises :class:`DeliveryError`."""

    async def send(self, message: EmailMessage) -> str:
        """Deliver ``message``."""
        ...


class ConsoleTransport:
    """Logs messages instead of sending them (development; never in production)."""

    def __init__(self, *, show_body: bool) -> None:
        self.show_body = show_body

    async def send(self, message: EmailMessage) -> str:
        """Write ``email.sent`` with the recipient, and the text when ``show_body``."""
        body = message.get_body(("plain",))
        details = {"to": message["To"], "text": body.get_content() if body else ""}
        log.info(
            "email.sent",
            backend="console",
            subject=message["Subject"],
            **(details if self.show_body else {}),
        )
        return "console"


class SmtpTransport:
    """Sends through the configured relay, one connection per message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` to the relay."""
        smtp = self.settings
        try:
            errors, response = await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.use_tls,
                start_tls=smtp.start_tls,
                timeout=smtp.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            raise DeliveryError(repr(exc), permanent=all(c >= 500 for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(repr(exc), permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(repr(exc), permanent=False) from exc
        if errors:
            raise DeliveryError(f"recipients refused: {errors}", permanent=True)
        return str(response)[:500]


def build_transport(email: EmailSettings, *, production: bool) -> MailTransport:
    """The transport chosen by ``email.backend``."""
    if email.backend == "smtp":
        return SmtpTransport(email.smtp)
    if production:
        log.warning("email.console_backend_in_production")
    return ConsoleTransport(show_body=not production)
