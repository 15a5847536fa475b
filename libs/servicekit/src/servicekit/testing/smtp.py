"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts.

For the tests of a service that sends mail, and of the whole system; it needs aiosmtpd
(the `testing` extra).
"""

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
        self.refused: set[str] = set()
        #: Seconds each ``RCPT TO`` is held before its answer (a slow server to die during).
        self.rcpt_delay_s = 0.0
        #: Set while a client waits in a held ``RCPT TO``.
        self.holding = threading.Event()
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    async def handle_RCPT(
        self,
        _server: SMTP,
        _session: SmtpSession,
        envelope: Envelope,
        address: str,
        _rcpt_options: list[str],
    ) -> str:
        """Refuse the addresses of :meth:`refuse` as a mailbox that does not exist."""
        if self.rcpt_delay_s:
            self.holding.set()
            await asyncio.sleep(self.rcpt_delay_s)
            self.holding.clear()
        if address in self.refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, _session: SmtpSession, envelope: Envelope) -> str:
        """Keep the message as received."""
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def refuse(self, address: str) -> None:
        """Answer 550 to ``RCPT TO`` of ``address`` from now on."""
        self.refused.add(address)

    def start(self) -> None:
        """Listen (returns once the server answers); again on the same port after a stop."""
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="localhost"
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (the SMTP server is down until the next start)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

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
    if part is None:
        raise AssertionError(f"no text/plain part in {message['Subject']!r}")
    content: str = cast(EmailMessage, part).get_content()
    return content.replace("\r\n", "\n")


def token_in(message: EmailMessage) -> str:
    """The token of the link in ``message``."""
    match = _TOKEN.search(body_of(message))
    if match is None:
        raise AssertionError(f"no link with a token in:\n{body_of(message)}")
    return match.group(1)
