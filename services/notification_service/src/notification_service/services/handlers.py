"""What each user event means here: recipients remembered, deliveries created, data erased.

Every handler runs in the consumer's transaction, with the event id already in the inbox;
a delivery carries that event id and its kind (unique together), so an event makes at most
one mail of each kind however often it is delivered (an email-change request makes two: the
link to the new address, the notice to the old one). The courier is woken once the
transaction commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from notification_service.models import Delivery, DeliveryStatus
from notification_service.repositories import (
    DeliveryRepository,
    PreferencesRepository,
    RecipientRepository,
)
from notification_service.schemas import events as user_events
from servicekit.db import on_commit

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from servicekit.db import AsyncSession
    from servicekit.events import CloudEvent, DomainEvent, Handler

#: At or below this many recovery codes left, the mail suggests generating new ones.
FEW_RECOVERY_CODES = 3


@dataclass(frozen=True, slots=True)
class MailHandlers:
    """The handlers of the consumed events; ``wake`` starts the courier after a commit."""

    wake: Callable[[], None]
    #: The domain of the ``Message-ID`` headers.
    message_domain: str
    #: Where the user service's pages are (links without a token).
    frontend_url: str

    def by_type(self) -> dict[str, Handler]:
        """Handlers by CloudEvents type."""
        table: dict[type[DomainEvent], Handler] = {
            user_events.Registered: self.registered,
            user_events.VerificationRequested: self.link_requested,
            user_events.ResetRequested: self.link_requested,
            user_events.EmailVerified: self.email_verified,
            user_events.ProfileUpdated: self.profile_updated,
            user_events.PasswordChanged: self.password_changed,
            user_events.Deactivated: self.deactivated,
            user_events.Deleted: self.deleted,
            user_events.SessionCreated: self.session_created,
            user_events.RegistrationAttempted: self.registration_attempted,
            user_events.EmailChangeRequested: self.email_change_requested,
            user_events.EmailChanged: self.email_changed,
            user_events.MfaEnabled: self.mfa_enabled,
            user_events.MfaDisabled: self.mfa_disabled,
            user_events.RecoveryCodeUsed: self.recovery_code_used,
        }
        return {event.type_name(): handler for event, handler in table.items()}

    async def registered(self, session: AsyncSession, event: Any, _: CloudEvent) -> None:
        """Remember the new user's address and name."""
        await RecipientRepository.from_session(session).remember(
            event.user_id, email=event.email, full_name=event.full_name
        )

    async def link_requested(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Mail the verification or reset link, to the address the token was issued for."""
        await RecipientRepository.from_session(session).remember(
            event.user_id, email=event.email, full_name=event.full_name
        )
        kind = (
            "verify_email"
            if isinstance(event, user_events.VerificationRequested)
            else "password_reset"
        )
        context = {"token": event.token, "expires_at": event.expires_at.isoformat()}
        await self._deliver(session, envelope, event.user_id, kind, context, to=event.email)

    async def email_verified(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Welcome the user (unless they switched welcome mail off)."""
        await RecipientRepository.from_session(session).remember(event.user_id, email=event.email)
        await self._deliver(session, envelope, event.user_id, "welcome", {})

    async def profile_updated(self, session: AsyncSession, event: Any, _: CloudEvent) -> None:
        """Greet the user by their new name from now on."""
        await RecipientRepository.from_session(session).remember(
            event.user_id, full_name=event.full_name
        )

    async def password_changed(
        self, session: AsyncSession, event: Any, envelope: CloudEvent
    ) -> None:
        """Tell the user their password changed."""
        context = {"method": event.method, "at": _when(envelope)}
        await self._deliver(session, envelope, event.user_id, "password_changed", context)

    async def deactivated(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Tell the user their account was deactivated."""
        context = {"at": _when(envelope)}
        await self._deliver(session, envelope, event.user_id, "account_deactivated", context)

    async def deleted(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Erase the user's notifications, preferences and address; send a last notice."""
        await DeliveryRepository.from_session(session).erase_user(event.user_id)
        await RecipientRepository.from_session(session).forget(event.user_id)
        context = {"at": _when(envelope)}
        await self._deliver(session, envelope, None, "account_deleted", context, to=event.email)

    async def session_created(
        self, session: AsyncSession, event: Any, envelope: CloudEvent
    ) -> None:
        """Notice a sign-in from a device not seen before (not the first one ever)."""
        recipient = await RecipientRepository.from_session(session).get(event.user_id)
        device = hashlib.sha256((event.user_agent or "").encode()).hexdigest()[:32]
        if recipient is not None:
            known = list(recipient.known_devices)
            if device in known:
                return
            recipient.known_devices = [*known, device]
            if not known:
                return  # the first device of the account is no news
        context = {"at": _when(envelope), "ip": event.ip, "user_agent": event.user_agent}
        await self._deliver(session, envelope, event.user_id, "new_sign_in", context)

    async def registration_attempted(
        self, session: AsyncSession, event: Any, envelope: CloudEvent
    ) -> None:
        """Tell the owner their address was registered again (the answer hid that it exists)."""
        context = {"at": _when(envelope), "reset": f"{self.frontend_url}/reset-password"}
        await self._deliver(
            session, envelope, event.user_id, "account_exists", context, to=event.email
        )

    async def email_change_requested(
        self, session: AsyncSession, event: Any, envelope: CloudEvent
    ) -> None:
        """Mail the confirmation link to the new address and a notice to the current one.

        The new address is not remembered: it is the account's only once the link is used.
        """
        await RecipientRepository.from_session(session).remember(
            event.user_id, email=event.previous_email, full_name=event.full_name
        )
        link = {"token": event.token, "expires_at": event.expires_at.isoformat()}
        await self._deliver(session, envelope, event.user_id, "email_change", link, to=event.email)
        notice = {"at": _when(envelope), "new_email": event.email}
        await self._deliver(
            session, envelope, event.user_id, "email_change_notice", notice, to=event.previous_email
        )

    async def email_changed(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Mail the new address from now on; tell the previous one where the account went."""
        await RecipientRepository.from_session(session).remember(event.user_id, email=event.email)
        context = {"at": _when(envelope), "new_email": event.email}
        await self._deliver(
            session, envelope, event.user_id, "email_changed", context, to=event.previous_email
        )

    async def mfa_enabled(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Tell the user two-factor authentication is on.

        The event's address is the fallback of these notices: the courier sends to the
        account's current address, and to this one when it knows no other.
        """
        context = {"at": _when(envelope)}
        await self._deliver(
            session, envelope, event.user_id, "mfa_enabled", context, to=event.email
        )

    async def mfa_disabled(self, session: AsyncSession, event: Any, envelope: CloudEvent) -> None:
        """Tell the user two-factor authentication is off, and whether an administrator did it."""
        by_admin = event.actor_id is not None and event.actor_id != event.user_id
        context = {"at": _when(envelope), "by_admin": by_admin}
        await self._deliver(
            session, envelope, event.user_id, "mfa_disabled", context, to=event.email
        )

    async def recovery_code_used(
        self, session: AsyncSession, event: Any, envelope: CloudEvent
    ) -> None:
        """Tell the user a recovery code signed them in, and how many are left."""
        context = {
            "at": _when(envelope),
            "remaining": event.remaining,
            "few_left": event.remaining <= FEW_RECOVERY_CODES,
        }
        await self._deliver(
            session, envelope, event.user_id, "recovery_code_used", context, to=event.email
        )

    async def _deliver(
        self,
        session: AsyncSession,
        envelope: CloudEvent,
        user_id: uuid.UUID | None,
        kind: str,
        context: dict[str, Any],
        *,
        to: str | None = None,
    ) -> None:
        """Create the event's delivery of ``kind``: pending, suppressed, or failed."""
        recipient = (
            await RecipientRepository.from_session(session).get(user_id) if user_id else None
        )
        delivery = Delivery(
            event_id=envelope.id,
            user_id=user_id,
            kind=kind,
            recipient=to or (recipient.email if recipient else None),
            recipient_name=recipient.full_name if recipient else None,
            context=context,
            message_id=make_msgid(domain=self.message_domain),
        )
        if delivery.recipient is None:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"unknown recipient: no address known for user {user_id}"
        elif user_id and kind in await PreferencesRepository.from_session(session).muted(user_id):
            delivery.status = DeliveryStatus.SUPPRESSED
        await DeliveryRepository.from_session(session).add(delivery)
        on_commit(session, self._wake)

    async def _wake(self) -> None:
        self.wake()


def _when(envelope: CloudEvent) -> str:
    return envelope.time.strftime("%Y-%m-%d %H:%M UTC")
