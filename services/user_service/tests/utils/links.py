"""Emailed-link tokens written straight to the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from servicekit.db import AsyncSession
from servicekit.db.orm import utcnow
from user_service.models import EmailToken, TokenPurpose
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
