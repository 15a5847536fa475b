"""Moving an account to a new address: a link to the new one, a notice to the old one.

The request (password confirmed, recent sign-in) issues a single-use link for the new
address; ``user.email_change_requested`` asks the notification service to mail it and to
tell the old address. Confirming moves the account in one transaction: the address
changes (409 if another account took it meanwhile), ``user.email_changed`` is published and
every session but the requesting one is revoked. A newer request voids older links; a
change made meanwhile (another confirmation, an admin edit) voids them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicekit.observability.logging import get_logger
from user_service.addresses import normalize_email
from user_service.errors import EmailAlreadyRegistered, EmailUnchanged
from user_service.models import TokenPurpose
from user_service.repositories import UserRepository
from user_service.schemas.events import EmailChangeRequested, UserEmailChanged, user_subject
from user_service.services.audit import Actor, AuditAction
from user_service.services.email_links import issue_link, redeem_link

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from servicekit.events import EventRecorder, Sealer
    from servicekit.ratelimit import RateLimiter
    from user_service.models import User
    from user_service.services.audit import AuditTrail
    from user_service.services.credentials import CredentialChecks
    from user_service.services.revocation import SessionRevoker

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailChangeService:
    """Requests and confirms address changes; never commits."""

    checks: CredentialChecks
    revoker: SessionRevoker
    limiter: RateLimiter
    events: EventRecorder
    #: Seals the link's token in the event (``events.seal_keys``).
    sealer: Sealer
    audit: AuditTrail
    ttl_minutes: int

    async def request(
        self,
        session: AsyncSession,
        user: User,
        *,
        new_email: str,
        password: str,
        session_id: uuid.UUID,
    ) -> None:
        """Mail a confirmation link to ``new_email`` (and a notice to the current one).

        Raises ``WrongPassword`` (counted toward the lockout), ``EmailUnchanged`` or
        ``EmailAlreadyRegistered``.
        """
        await self.limiter.check([("email_change_user", str(user.id))])
        await self.checks.confirm_password(
            session, user, password, action=AuditAction.EMAIL_CHANGE_REQUESTED
        )
        new_email = normalize_email(new_email)
        if new_email == user.email:
            raise EmailUnchanged
        if await UserRepository.from_session(session).get_by_email(new_email) is not None:
            raise EmailAlreadyRegistered
        token, record = await issue_link(
            session,
            user,
            TokenPurpose.EMAIL_CHANGE,
            ttl_minutes=self.ttl_minutes,
            new_email=new_email,
            session_id=session_id,
        )
        requested = EmailChangeRequested(
            user_id=user.id,
            email=new_email,
            previous_email=user.email,
            full_name=user.full_name,
            token=self.sealer.seal(token),  # never in clear in the outbox or the streams
            expires_at=record.expires_at,
        )
        await self.events(session, requested, subject=user_subject(user.id))
        await self.audit.record(
            session, AuditAction.EMAIL_CHANGE_REQUESTED, subject_id=user.id, new_email=new_email
        )

    async def confirm(self, session: AsyncSession, *, token: str) -> User:
        """Move the account to the link's address; raises ``InvalidOrExpiredLink`` or 409.

        ``EmailAlreadyRegistered`` rolls the transaction back: the link stays unused.
        """
        user, record = await redeem_link(session, token, TokenPurpose.EMAIL_CHANGE)
        assert record.new_email is not None  # noqa: S101 - every email-change link has one
        previous = user.email
        user.email, user.is_verified = record.new_email, True  # the link proved the mailbox
        await UserRepository.from_session(session).flush_email_change(user)
        await self.revoker.revoke(
            session, user_id=user.id, reason="email_changed", except_id=record.session_id
        )
        changed = UserEmailChanged(user_id=user.id, email=user.email, previous_email=previous)
        await self.events(session, changed, subject=user_subject(user.id))
        await self.audit.record(
            session,
            AuditAction.EMAIL_CHANGED,
            subject_id=user.id,
            actor=Actor(user_id=user.id),
            previous_email=previous,
            email=user.email,
        )
        log.info("user.email_changed", user_id=str(user.id))
        return user
