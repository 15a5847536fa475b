"""The courier: sends due deliveries, retries temporary failures, gives up after N attempts.

Each cycle leases a batch of due deliveries in one short transaction (the lease and the
attempt count commit before anything is sent), sends them one by one outside any
transaction, and records each outcome in a transaction of its own. A courier killed while
sending leaves its lease, which expires after ``courier.lease_s``; the delivery is then
sent again, with the same ``Message-ID``. A message the server had not accepted when the
connection died (the usual case: the kill lands during the SMTP conversation) is
therefore delivered once; one accepted in the instant between the server's 250 and the
outcome's commit is delivered twice, with one ``Message-ID`` a mailbox can fold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy.exc import SQLAlchemyError

from notification_service.models import Delivery, DeliveryStatus
from notification_service.repositories import DeliveryRepository, RecipientRepository
from notification_service.services.kinds import KINDS
from notification_service.services.rendering import RenderError
from notification_service.services.transport import DeliveryError, build_message
from servicekit.db import request_transaction
from servicekit.db.orm import utcnow
from servicekit.events import SealError
from servicekit.observability import metrics
from servicekit.observability.logging import get_logger
from servicekit.runtime import BackgroundLoop

if TYPE_CHECKING:
    import uuid
    from email.message import EmailMessage

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from notification_service.config import CourierSettings, EmailSettings
    from notification_service.services.directory import UserDirectory
    from notification_service.services.rendering import MailRenderer
    from notification_service.services.transport import MailTransport
    from servicekit.db import AsyncSession
    from servicekit.events import Sealer

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt."""

    status: DeliveryStatus
    error: str | None = None
    response: str | None = None


def deliveries_counter() -> Any:
    """Attempts by kind and outcome (``sent``, ``retry``, ``failed``)."""
    return metrics.counter(
        "notification_deliveries_total", "Delivery attempts by outcome.", ("kind", "outcome")
    )


class Courier(BackgroundLoop):
    """Sends the service's deliveries; start it, wake it after commits, stop it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: MailTransport,
        renderer: MailRenderer,
        sealer: Sealer,
        *,
        email: EmailSettings,
        settings: CourierSettings,
        directory: UserDirectory | None = None,
    ) -> None:
        super().__init__(name="courier", interval_s=settings.poll_interval_s, grace_s=5.0)
        self.sessionmaker = sessionmaker
        self.transport = transport
        self.renderer = renderer
        self.sealer = sealer
        self.email = email
        self.settings = settings
        #: Where a recipient's current address comes from (``None``: the events' alone).
        self.directory = directory

    async def step(self) -> None:
        """Send every delivery due now, a batch at a time."""
        while True:
            due = await self._claim()
            for delivery in due:
                await self.send(delivery)
            if len(due) < self.settings.batch_size:
                return

    async def _claim(self) -> list[Delivery]:
        lease_until = utcnow() + timedelta(seconds=self.settings.lease_s)
        async with self.sessionmaker() as session, request_transaction(session):
            repo = DeliveryRepository.from_session(session)
            return list(
                await repo.claim_due(limit=self.settings.batch_size, lease_until=lease_until)
            )

    async def send(self, delivery: Delivery) -> Outcome:
        """One attempt at ``delivery`` (leased by this courier); records the outcome."""
        subject = delivery.subject
        try:
            message = await self._message(delivery)
            subject = str(message["Subject"])
            response = await self.transport.send(message)
        except (RenderError, SealError, LinkExpired) as exc:
            outcome = Outcome(DeliveryStatus.FAILED, error=str(exc))
        except (DeliveryError, SQLAlchemyError) as exc:  # the database may be away briefly
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            last = permanent or delivery.attempts >= self.settings.max_attempts
            outcome = Outcome(DeliveryStatus.FAILED if last else DeliveryStatus.PENDING, str(exc))
        else:
            outcome = Outcome(DeliveryStatus.SENT, response=response)
        await self._record(delivery, outcome, subject)
        return outcome

    async def _message(self, delivery: Delivery) -> EmailMessage:
        kind = KINDS[delivery.kind]
        context: dict[str, Any] = {
            **delivery.context,
            "name": delivery.recipient_name or "",
            "product": self.email.product_name,
        }
        address = delivery.recipient
        if kind.link_path is not None:
            context["link"] = self._link(kind.link_path, delivery.context)
        elif delivery.user_id is not None and not kind.to_event_address:
            address, context["name"] = await self._current(delivery.user_id, address, context)
        if not address:
            raise RenderError("no address to send to (erased or never known)")
        mail = self.renderer.render(delivery.kind, context)
        return build_message(
            mail,
            sender=self.email.from_address,
            to=address,
            name=str(context["name"]),
            message_id=delivery.message_id,
        )

    async def _current(
        self, user_id: uuid.UUID, address: str | None, context: dict[str, Any]
    ) -> tuple[str | None, str]:
        """The address and name now: the user service's, else the events' last ones."""
        contact = await self.directory.contact(user_id) if self.directory else None
        if contact is not None:
            return contact.email, contact.full_name
        async with self.sessionmaker() as session:
            known = await RecipientRepository.from_session(session).get(user_id)
        if known is None:
            return address, str(context["name"])
        return known.email, known.full_name

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Stop sending; the directory's connections close with it."""
        await super().stop(timeout_s)
        if self.directory is not None:
            await self.directory.aclose()

    def _link(self, path: str, context: dict[str, Any]) -> str:
        expires_at = datetime.fromisoformat(str(context["expires_at"]))
        if expires_at <= utcnow():
            raise LinkExpired("the link expired before it could be sent")
        token = self.sealer.open(str(context["token"]))
        return f"{self.email.frontend_url.rstrip('/')}{path}?{urlencode({'token': token})}"

    async def _record(self, claimed: Delivery, outcome: Outcome, subject: str) -> None:
        async with self.sessionmaker() as session, request_transaction(session):
            delivery = await DeliveryRepository.from_session(session).get(claimed.id)
            if delivery is None or delivery.lease_until != claimed.lease_until:
                return  # erased meanwhile, or the lease ran out and another courier took it
            delivery.status = outcome.status
            delivery.subject = subject
            delivery.last_error = outcome.error
            delivery.lease_until = None
            if outcome.status is DeliveryStatus.SENT:
                delivery.sent_at = utcnow()
                delivery.provider_response = outcome.response
                if KINDS[delivery.kind].erase_after_send:
                    delivery.recipient = delivery.recipient_name = None
            elif outcome.status is DeliveryStatus.PENDING:
                delivery.next_attempt_at = utcnow() + timedelta(seconds=self._backoff(delivery))
        label = {DeliveryStatus.PENDING: "retry"}.get(outcome.status, outcome.status.value)
        deliveries_counter().labels(claimed.kind, label).inc()
        log.info(
            "delivery.attempted",
            delivery_id=str(claimed.id),
            kind=claimed.kind,
            outcome=label,
            attempt=claimed.attempts,
            error=outcome.error,
        )

    def _backoff(self, delivery: Delivery) -> float:
        base = self.settings.backoff_base_s * 2.0 ** (delivery.attempts - 1)
        return min(base, self.settings.backoff_max_s) * random.uniform(0.75, 1.25)


class LinkExpired(Exception):
    """The link's token expired before the mail could be sent."""
