"""Collaborators the identity rules need, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicekit.auth import SessionDenylist
from servicekit.ratelimit.limiter import RateLimiter
from servicekit.ratelimit.lockout import Lockout
from servicekit.redis.cache import Cache
from user_service.config import UserServiceSettings
from user_service.email import ConsoleEmailSender, EmailSender
from user_service.schemas.user import UserSnapshot
from user_service.security import PasswordHasher
from user_service.tokens import TokenIssuer


@dataclass
class IdentityContext:
    """Settings, hasher, token issuer, revocation list, user cache, lockout and limits."""

    settings: UserServiceSettings
    hasher: PasswordHasher
    issuer: TokenIssuer
    denylist: SessionDenylist
    user_cache: Cache[UserSnapshot]
    lockout: Lockout
    limiter: RateLimiter
    #: Set when a denylist write failed; the maintainer rebuilds the list from PostgreSQL.
    denylist_dirty: bool = field(default=False)
    #: Delivers verification and reset mail (the lifespan sets the configured backend).
    email_sender: EmailSender = field(default_factory=ConsoleEmailSender)

    @property
    def denylist_ttl_s(self) -> int:
        """How long a revoked session must stay listed: an access token's lifetime + leeway."""
        return self.settings.jwt.access_ttl_s + 30
