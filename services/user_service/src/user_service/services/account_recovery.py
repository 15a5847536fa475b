"""Email verification and password reset through single-use emailed links.

A link carries 256 random bits; only their SHA-256 is stored, with the purpose, the address
the link went to and an expiry. Confirming takes a row lock and marks the token used in the
same transaction, so a token works once even when two confirmations race; a new request
replaces the user's earlier tokens of that purpose.

The request steps answer the same whether or not an address has an account: the mail is
queued only after commit and delivered in the background (see ``user_service.email``), so
neither the answer nor its timing tells which addresses are registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from servicekit.db import AsyncSession, on_commit
from servicekit.db.orm import utcnow
from servicekit.observability.logging import get_logger
from user_service.addresses import normalize_email
from user_service.email import EmailSender, OutgoingEmail
from user_service.errors import InvalidOrExpiredLink
from user_service.models import EmailToken, TokenPurpose, User
from user_service.repositories import EmailTokenRepository, UserRepository
from user_service.schemas.events import UserEmailVerified, UserPasswordChanged, user_subject
from user_service.tokens import hash_token, new_opaque_token

if TYPE_CHECKING:
    from servicekit.events import EventRecorder
    from servicekit.ratelimit import RateLimiter
    from user_service.config import EmailSettings
    from user_service.security import PasswordHasher
    from user_service.services.revocation import SessionRevoker

log = get_logger(__name__)

VERIFY_EMAIL_PATH = "/verify-email"
RESET_PASSWORD_PATH = "/reset-password"  # noqa: S105 - a path, not a password


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecoveryService:
    """Issues and redeems emailed tokens; never commits."""

    hasher: PasswordHasher
    limiter: RateLimiter
    revoker: SessionRevoker
    mailer: EmailSender
    settings: EmailSettings
    events: EventRecorder

    async def request_verification(self, session: AsyncSession, *, email: str) -> None:
        """Mail a verification link to an active, unverified account with this address.

        Do nothing otherwise (the caller answers the same either way).
        """
        # Limited per address whether or not it is registered: the limit reveals nothing.
        await self.limiter.check([("verify_email_email", normalize_email(email))])
        user = await UserRepository.from_session(session).get_by_email(normalize_email(email))
        if user is None or not user.is_active or user.is_verified:
            return
        await self._mail_link(session, user, TokenPurpose.VERIFY_EMAIL)

    async def confirm_verification(self, session: AsyncSession, *, token: str) -> User:
        """Mark the token's user verified; raises :class:`InvalidOrExpiredLink`."""
        user = await self._redeem(session, token, TokenPurpose.VERIFY_EMAIL)
        user.is_verified = True
        await session.flush()
        await self.events(
            session,
            UserEmailVerified(user_id=user.id, email=user.email),
            subject=user_subject(user.id),
        )
        log.info("user.email_verified", user_id=str(user.id))
        return user

    async def request_password_reset(self, session: AsyncSession, *, email: str) -> None:
        """Mail a reset link to an active account with this address; do nothing otherwise."""
        await self.limiter.check([("password_reset_email", normalize_email(email))])
        user = await UserRepository.from_session(session).get_by_email(normalize_email(email))
        if user is None or not user.is_active:
            return
        await self._mail_link(session, user, TokenPurpose.PASSWORD_RESET)

    async def reset_password(self, session: AsyncSession, *, token: str, new_password: str) -> None:
        """Set a new password and revoke every session of the user.

        Raises :class:`InvalidOrExpiredLink` or ``PasswordPolicyViolation``; the latter rolls
        the transaction back, so the token stays usable for a better password.
        """
        user = await self._redeem(session, token, TokenPurpose.PASSWORD_RESET)
        self.hasher.check_policy(new_password, email=user.email)
        user.password_hash = await self.hasher.hash(new_password)
        await session.flush()
        await self.revoker.revoke(session, user_id=user.id, reason="password_reset")
        await self.events(
            session,
            UserPasswordChanged(user_id=user.id, email=user.email, method="reset"),
            subject=user_subject(user.id),
        )
        log.info("user.password_reset", user_id=str(user.id))

    async def _issue(
        self, session: AsyncSession, user: User, purpose: TokenPurpose, ttl_minutes: int
    ) -> str:
        """Replace the user's tokens of ``purpose`` with a new one; returns it in clear."""
        token = new_opaque_token()  # the same opaque 256-bit form as refresh tokens
        now = utcnow()
        repo = EmailTokenRepository.from_session(session)
        await repo.discard(user_id=user.id, purpose=purpose)
        await repo.add(
            EmailToken(
                token_hash=hash_token(token),
                user_id=user.id,
                purpose=purpose,
                email=user.email,
                created_at=now,
                expires_at=now + timedelta(minutes=ttl_minutes),
            )
        )
        return token

    async def _redeem(self, session: AsyncSession, token: str, purpose: TokenPurpose) -> User:
        """Mark the token used and return its user, or raise :class:`InvalidOrExpiredLink`."""
        record = await EmailTokenRepository.from_session(session).get_locked(
            hash_token(token), purpose
        )
        now = utcnow()
        if record is None or record.used_at is not None or record.expires_at <= now:
            raise InvalidOrExpiredLink
        user = await UserRepository.from_session(session).get(record.user_id)
        # A changed address voids the link: it must not verify or reset another mailbox.
        if user is None or not user.is_active or user.email != record.email:
            raise InvalidOrExpiredLink
        record.used_at = now
        return user

    async def _mail_link(self, session: AsyncSession, user: User, purpose: TokenPurpose) -> None:
        """Issue a token of ``purpose`` and mail its link once the transaction commits."""
        minutes = (
            self.settings.verification_ttl_minutes
            if purpose is TokenPurpose.VERIFY_EMAIL
            else self.settings.password_reset_ttl_minutes
        )
        token = await self._issue(session, user, purpose, minutes)
        path, subject, template = _MAILS[purpose]
        base = self.settings.frontend_url.rstrip("/")
        link = f"{base}{path}?{urlencode({'token': token})}"
        message = OutgoingEmail(
            to=user.email,
            subject=subject,
            text=template.format(link=link, valid_for=_duration(minutes)),
            kind=purpose.value,
            link=link,
        )

        async def send() -> None:
            await self.mailer.send(message)

        on_commit(session, send)


#: Per purpose: the front-end path of the link, the subject and the text of the mail.
_MAILS = {
    TokenPurpose.VERIFY_EMAIL: (
        VERIFY_EMAIL_PATH,
        "Confirm your email address",
        "Please confirm your email address by opening this link:\n\n{link}\n\n"
        "The link is valid for {valid_for} and works once. "
        "If you did not create an account, ignore this email.\n",
    ),
    TokenPurpose.PASSWORD_RESET: (
        RESET_PASSWORD_PATH,
        "Reset your password",
        "Someone, hopefully you, asked to reset the password of your account. "
        "Choose a new password here:\n\n{link}\n\n"
        "The link is valid for {valid_for} and works once; using it signs "
        "you out on every device. If you did not ask for this, ignore this email: "
        "your password stays unchanged.\n",
    ),
}


def _duration(minutes: int) -> str:
    if minutes % 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"
