"""All SQL of the user service."""

from user_service.repositories.email_token import EmailTokenRepository
from user_service.repositories.idempotency_key import IdempotencyKeyRepository
from user_service.repositories.session import RevokedSessionReader, SessionRepository
from user_service.repositories.user import UserRepository
from user_service.repositories.user_query import UserQueryRepository

__all__ = [
    "EmailTokenRepository",
    "IdempotencyKeyRepository",
    "RevokedSessionReader",
    "SessionRepository",
    "UserQueryRepository",
    "UserRepository",
]
