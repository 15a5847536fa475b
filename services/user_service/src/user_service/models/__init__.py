"""ORM models; importing this package registers every table on ``Base.metadata``."""

from user_service.models.audit_event import AuditEvent
from user_service.models.base import Base
from user_service.models.email_token import EmailToken, TokenPurpose
from user_service.models.idempotency_key import IdempotencyKey
from user_service.models.mfa import MfaChallenge, RecoveryCode, TotpCredential
from user_service.models.oauth_client import OAuthClient
from user_service.models.outbox import outbox
from user_service.models.refresh_token import RotatedRefreshToken
from user_service.models.session import Session
from user_service.models.user import Role, User

__all__ = [
    "AuditEvent",
    "Base",
    "EmailToken",
    "IdempotencyKey",
    "MfaChallenge",
    "OAuthClient",
    "RecoveryCode",
    "Role",
    "RotatedRefreshToken",
    "Session",
    "TokenPurpose",
    "TotpCredential",
    "User",
    "outbox",
]
