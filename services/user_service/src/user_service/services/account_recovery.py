"""Email verification and password reset through single-use emailed links.

The links are those of :mod:`user_service.services.email_links`: a new request replaces
the user's earlier tokens of that purpose, and a token works once.

The request steps answer the same whether or not an address has an account. A link is
asked for with an event (``user.email_verification_requested``,
``user.password_reset_requested``) recorded in a transaction of this service, its token
sealed; the notification service sends the mail, so a mail is never lost to a crash after
the commit and no request waits on a mail server. In the enumeration-safe mode
(``enumeration_safe``) even the lookup happens after the response, in
:meth:`AccountRecoveryService._request_later`, so the time to answer cannot tell which
addresses are registered either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servicekit.db import AsyncSession, on_commit, request_transaction
from servicekit.observability.logging import get_logger
from servicekit.runtime import BackgroundTasks
from user_service.addresses import normalize_email
from user_service.models import TokenPurpose, User
from user_service.repositories import UserRepository
from user_service.schemas.events import (
    EmailVerificationRequested,
    PasswordResetRequested,
    UserEmailVerified,
    UserPasswordChanged,
    UserRegistrationAttempted,
    user_subject,
)
from user_service.services.audit import Actor, AuditAction
from user_service.services.email_links import cancel_email_change, issue_link, redeem_link

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from servicekit.events import EventRecorder, Sealer
    from servicekit.ratelimit import RateLimiter
    from user_service.config import EmailSettings
    from user_service.security import PasswordHasher
    from user_service.services.audit import AuditTrail
    from user_service.services.revocation import SessionRevoker

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecoveryService:
    """Issues and redeems emailed tokens; never commits."""

    hasher: PasswordHasher
    audit: AuditTrail
    limiter: RateLimiter
    revoker: SessionRevoker
    settings: EmailSettings
    events: EventRecorder
    sealer: Sealer
    #: Look addresses up after the response (in :attr:`background`, on sessions of this
    #: sessionmaker) rather than inside the request; ``None``: inside the request.
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    background: BackgroundTasks = field(default_factory=lambda: BackgroundTasks("recovery"))

    async def request_verification(self, session: AsyncSession, *, email: str) -> None:
        """Mail a verification link to an active, unverified account with this address.

        Do nothing otherwise (the caller answers the same either way).
        """
        # Limited per address whether or not it is registered: the limit reveals nothing.
        await self.limiter.check([("verify_email_email", normalize_email(email))])
        await self._request(session, TokenPurpose.VERIFY_EMAIL, email)

    async def confirm_verification(self, session: AsyncSession, *, token: str) -> User:
        """Mark the token's user verified; raises :class:`InvalidOrExpiredLink`."""
        user, _ = await redeem_link(session, token, TokenPurpose.VERIFY_EMAIL)
        user.is_verified = True
        await session.flush()
        await self.events(
            session,
            UserEmailVerified(user_id=user.id, email=user.email),
            subject=user_subject(user.id),
        )
        await self.audit.record(
            session, AuditAction.EMAIL_VERIFIED, subject_id=user.id, actor=Actor(user_id=user.id)
        )
        log.info("user.email_verified", user_id=str(user.id))
        return user

    async def request_password_reset(self, session: AsyncSession, *, email: str) -> None:
        """Mail a reset link to an active account with this address; do nothing otherwise."""
        await self.limiter.check([("password_reset_email", normalize_email(email))])
        await self._request(session, TokenPurpose.PASSWORD_RESET, email)

    async def mail_registration_attempt(self, session: AsyncSession, user: User) -> None:
        """Tell the owner of ``user``'s address that it was registered again (an event).

        The enumeration-safe registration answers a known address like a new one; this
        notice is how its owner (and only they) learn of it.
        """
        await self.events(
            session,
            UserRegistrationAttempted(user_id=user.id, email=user.email),
            subject=user_subject(user.id),
        )

    async def _request(self, session: AsyncSession, purpose: TokenPurpose, email: str) -> None:
        """Mail a link of ``purpose`` if an eligible account has this address.

        With a :attr:`sessionmaker`, only once the request has committed and in the
        background, so the response cannot wait on the lookup.
        """
        if self.sessionmaker is None:
            await self._mail_if_eligible(session, purpose, email)
            return

        async def later() -> None:
            self.background.spawn(self._request_later(purpose, email))

        on_commit(session, later)

    async def _request_later(self, purpose: TokenPurpose, email: str) -> None:
        assert self.sessionmaker is not None  # noqa: S101 - only scheduled with one
        async with self.sessionmaker() as session, request_transaction(session):
            await self._mail_if_eligible(session, purpose, email)

    async def _mail_if_eligible(
        self, session: AsyncSession, purpose: TokenPurpose, email: str
    ) -> None:
        user = await UserRepository.from_session(session).get_by_email(normalize_email(email))
        if user is None or not user.is_active:
            return
        if purpose is TokenPurpose.VERIFY_EMAIL and user.is_verified:
            return
        await self._mail_link(session, user, purpose)

    async def reset_password(self, session: AsyncSession, *, token: str, new_password: str) -> None:
        """Set a new password and revoke every session of the user.

        Raises :class:`InvalidOrExpiredLink` or ``PasswordPolicyViolation``; the latter rolls
        the transaction back, so the token stays usable for a better password.
        """
        user, _ = await redeem_link(session, token, TokenPurpose.PASSWORD_RESET)
        self.hasher.check_policy(new_password, email=user.email)
        user.password_hash = await self.hasher.hash(new_password)
        await session.flush()
        await cancel_email_change(session, user.id)
        await self.revoker.revoke(session, user_id=user.id, reason="password_reset")
        await self.events(
            session,
            UserPasswordChanged(user_id=user.id, email=user.email, method="reset"),
            subject=user_subject(user.id),
        )
        await self.audit.record(
            session, AuditAction.PASSWORD_RESET, subject_id=user.id, actor=Actor(user_id=user.id)
        )
        log.info("user.password_reset", user_id=str(user.id))

    async def _mail_link(self, session: AsyncSession, user: User, purpose: TokenPurpose) -> None:
        """Issue a token of ``purpose`` and record the event asking for its mail."""
        minutes = (
            self.settings.verification_ttl_minutes
            if purpose is TokenPurpose.VERIFY_EMAIL
            else self.settings.password_reset_ttl_minutes
        )
        token, record = await issue_link(session, user, purpose, ttl_minutes=minutes)
        request = _REQUESTS[purpose](
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            token=self.sealer.seal(token),  # never in clear in the outbox or the streams
            expires_at=record.expires_at,
        )
        await self.events(session, request, subject=user_subject(user.id))


#: Per purpose: the event asking for the mail.
_REQUESTS: dict[TokenPurpose, type[EmailVerificationRequested | PasswordResetRequested]] = {
    TokenPurpose.VERIFY_EMAIL: EmailVerificationRequested,
    TokenPurpose.PASSWORD_RESET: PasswordResetRequested,
}
