"""All SQL of the user service."""

from user_service.repositories.audit_event import AuditEventRepository
from user_service.repositories.email_token import EmailTokenRepository
from user_service.repositories.idempotency_key import IdempotencyKeyRepository
from user_service.repositories.mfa import (
    MfaChallengeRepository,
    RecoveryCodeRepository,
    TotpCredentialRepository,
)
from user_service.repositories.oauth_client import DisabledClientReader, OAuthClientRepository
from user_service.repositories.session import RevokedSessionReader, SessionRepository
from user_service.repositories.user import UserRepository
from user_service.repositories.user_query import UserQueryRepository

__all__ = [
    "AuditEventRepository",
    "DisabledClientReader",
    "EmailTokenRepository",
    "IdempotencyKeyRepository",
    "MfaChallengeRepository",
    "OAuthClientRepository",
    "RecoveryCodeRepository",
    "RevokedSessionReader",
    "SessionRepository",
    "TotpCredentialRepository",
    "UserQueryRepository",
    "UserRepository",
]
