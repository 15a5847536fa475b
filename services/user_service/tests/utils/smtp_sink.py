"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from servicekit.testing.process import free_port

_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")
# aiosmtpd logs every connection at INFO, including the one its Controller opens to start.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class SmtpSink:
    """Runs in its own thread (aiosmtpd's ``Controller``); the tests read :attr:`messages`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="localhost"
        )

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        """Keep the message as received."""
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Listen (returns once the server answers)."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        """The messages addressed to ``address`` so far, oldest first."""
        with self._arrived:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(
        self, address: str, *, count: int = 1, timeout_s: float = 5.0
    ) -> EmailMessage:
        """The ``count``-th message to ``address``, waiting for the background delivery."""
        return await asyncio.to_thread(self._wait_for, address, count, timeout_s)

    def _wait_for(self, address: str, count: int, timeout_s: float) -> EmailMessage:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.to(address)) >= count, timeout_s):
                raise TimeoutError(f"no message {count} to {address} within {timeout_s} s")
            return self.to(address)[count - 1]


def body_of(message: EmailMessage) -> str:
    """The plain-text body, with the line ends SMTP gave it turned back into newline characters."""
    part = message.get_body(("plain",))
    assert part is not None
    content: str = cast(EmailMessage, part).get_content()
    return content.replace("\r\n", "\n")


def token_in(message: EmailMessage) -> str:
    """The token of the link in ``message``."""
    match = _TOKEN.search(body_of(message))
    assert match is not None, body_of(message)
    return match.group(1)
