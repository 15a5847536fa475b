"""Emailed-link tokens: read from the events asking for the mail, or written to the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from servicekit.events import CloudEvent, Sealer
from user_service.config import UserServiceSettings
from user_service.models import EmailToken, TokenPurpose, outbox
from user_service.repositories import EmailTokenRepository
from user_service.tokens import hash_token, new_opaque_token


async def stored_link_token(
    db_session: AsyncSession, user: dict[str, Any], purpose: TokenPurpose, *, expires_in_s: float
) -> str:
    """An emailed-link token for ``user`` written straight to the database.

    Writing it directly tests expiry without waiting; returns the token as it would appear
    in the link.
    """
    token = new_opaque_token()
    now = utcnow()
    await EmailTokenRepository.from_session(db_session).add(
        EmailToken(
            token_hash=hash_token(token),
            user_id=uuid.UUID(user["id"]),
            purpose=purpose,
            email=user["email"],
            created_at=now - timedelta(minutes=30),
            expires_at=now + timedelta(seconds=expires_in_s),
        )
    )
    return token


#: The event asking for each purpose's mail.
REQUEST_TYPES = {
    TokenPurpose.VERIFY_EMAIL: "user.email_verification_requested.v1",
    TokenPurpose.PASSWORD_RESET: "user.password_reset_requested.v1",
    TokenPurpose.EMAIL_CHANGE: "user.email_change_requested.v1",
}


async def requested_tokens(
    db: AsyncSession | AsyncEngine, settings: UserServiceSettings, purpose: TokenPurpose, email: str
) -> list[str]:
    """The tokens of every link of ``purpose`` mailed to ``email``, oldest first, unsealed.

    What the notification service reads: the request events in the outbox, read in the
    test's transaction (``db_session``) or from what was committed (``db_engine``).
    """
    statement = (
        select(outbox.events.c.envelope)
        .where(outbox.events.c.type == REQUEST_TYPES[purpose])
        .order_by(outbox.events.c.id)
    )
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            envelopes = (await conn.execute(statement)).scalars().all()
    else:
        envelopes = (await db.execute(statement)).scalars().all()
    sealer = Sealer(settings.events.seal_keys)
    events = [CloudEvent.model_validate_json(envelope) for envelope in envelopes]
    return [sealer.open(e.data["token"]) for e in events if e.data["email"] == email]
