"""ORM models; importing this package registers every table on ``Base.metadata``."""

from user_service.models.base import Base
from user_service.models.email_token import EmailToken, TokenPurpose
from user_service.models.idempotency_key import IdempotencyKey
from user_service.models.oauth_client import OAuthClient
from user_service.models.outbox import outbox
from user_service.models.refresh_token import RotatedRefreshToken
from user_service.models.session import Session
from user_service.models.user import Role, User

__all__ = [
    "Base",
    "EmailToken",
    "IdempotencyKey",
    "OAuthClient",
    "Role",
    "RotatedRefreshToken",
    "Session",
    "TokenPurpose",
    "User",
    "outbox",
]
