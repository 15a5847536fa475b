"""All SQL of the user service."""

from user_service.repositories.email_token import EmailTokenRepository
from user_service.repositories.idempotency_key import IdempotencyKeyRepository
from user_service.repositories.oauth_client import DisabledClientReader, OAuthClientRepository
from user_service.repositories.session import RevokedSessionReader, SessionRepository
from user_service.repositories.user import UserRepository
from user_service.repositories.user_query import UserQueryRepository

__all__ = [
    "DisabledClientReader",
    "EmailTokenRepository",
    "IdempotencyKeyRepository",
    "OAuthClientRepository",
    "RevokedSessionReader",
    "SessionRepository",
    "UserQueryRepository",
    "UserRepository",
]
