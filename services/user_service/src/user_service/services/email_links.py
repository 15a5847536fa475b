"""Single-use emailed links: issue one (replacing the user's older ones), redeem one.

A link carries 256 random bits; only their SHA-256 is stored, with the purpose, the address
the link was issued for and an expiry. Redeeming takes a row lock and marks the token used
in the same transaction, so a token works once even when two confirmations race.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from servicekit.db.orm import utcnow
from user_service.errors import InvalidOrExpiredLink
from user_service.models import EmailToken, TokenPurpose
from user_service.repositories import EmailTokenRepository, UserRepository
from user_service.tokens import hash_token, new_opaque_token

if TYPE_CHECKING:
    import uuid

    from servicekit.db import AsyncSession
    from user_service.models import User


async def issue_link(
    session: AsyncSession,
    user: User,
    purpose: TokenPurpose,
    *,
    ttl_minutes: int,
    new_email: str | None = None,
    session_id: uuid.UUID | None = None,
) -> tuple[str, EmailToken]:
    """Replace the user's tokens of ``purpose`` with a new one; returns it in clear.

    Replacing makes an older link of the purpose stop working once a newer one is asked for.
    """
    token = new_opaque_token()  # the same opaque 256-bit form as refresh tokens
    now = utcnow()
    repo = EmailTokenRepository.from_session(session)
    await repo.discard(user_id=user.id, purpose=purpose)
    record = EmailToken(
        token_hash=hash_token(token),
        user_id=user.id,
        purpose=purpose,
        email=user.email,
        new_email=new_email,
        session_id=session_id,
        created_at=now,
        expires_at=now + timedelta(minutes=ttl_minutes),
    )
    await repo.add(record)
    return token, record


async def redeem_link(
    session: AsyncSession, token: str, purpose: TokenPurpose
) -> tuple[User, EmailToken]:
    """Mark the token used; its user and record, or raise :class:`InvalidOrExpiredLink`."""
    record = await EmailTokenRepository.from_session(session).get_locked(hash_token(token), purpose)
    now = utcnow()
    if record is None or record.used_at is not None or record.expires_at <= now:
        raise InvalidOrExpiredLink
    user = await UserRepository.from_session(session).get(record.user_id)
    # A changed address voids the link: it must not act on behalf of another mailbox.
    if user is None or not user.is_active or user.email != record.email:
        raise InvalidOrExpiredLink
    record.used_at = now
    return user, record


async def cancel_email_change(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Void the user's pending email-change link (a new password cancels the change).

    Someone who knew the old password may have asked to move the account to their own
    address; the owner's password change or reset must not leave that link working.
    """
    return await EmailTokenRepository.from_session(session).discard(
        user_id=user_id, purpose=TokenPurpose.EMAIL_CHANGE
    )
