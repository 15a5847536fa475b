"""The events the user service publishes: one payload model per versioned type.

Subjects are ``user/<id>`` (session events: ``user/<id>/session/<sid>``); every event of
one user has the partition key ``user/<id>``, so consumers see a user's events in commit
order. Addresses travel only where a consumer needs them to reach the user.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import DomainEvent, EventCatalog, Sealed
from user_service.models.user import Role


class UserRegistered(DomainEvent, event_type="user.registered", version=1):
    """An account was created (by registration or by an administrator's CLI)."""

    user_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_verified: bool


class UserEmailVerified(DomainEvent, event_type="user.email_verified", version=1):
    """The user confirmed their address through the emailed link."""

    user_id: uuid.UUID
    email: str


class UserProfileUpdated(DomainEvent, event_type="user.profile_updated", version=1):
    """Profile fields changed; ``full_name`` is the new value."""

    user_id: uuid.UUID
    full_name: str


class UserPasswordChanged(DomainEvent, event_type="user.password_changed", version=1):
    """The password changed, by the user (``changed``) or through a reset link (``reset``)."""

    user_id: uuid.UUID
    email: str
    method: str


class UserRoleChanged(DomainEvent, event_type="user.role_changed", version=1):
    """An administrator changed the user's role."""

    user_id: uuid.UUID
    role: Role
    previous_role: Role
    actor_id: uuid.UUID


class UserDeactivated(DomainEvent, event_type="user.deactivated", version=1):
    """An administrator deactivated the account; its sessions were revoked."""

    user_id: uuid.UUID
    email: str
    actor_id: uuid.UUID


class UserReactivated(DomainEvent, event_type="user.reactivated", version=1):
    """An administrator reactivated the account."""

    user_id: uuid.UUID
    actor_id: uuid.UUID


class UserDeleted(DomainEvent, event_type="user.deleted", version=1):
    """The account is gone; consumers erase what they keep of it."""

    user_id: uuid.UUID
    email: str
    actor_id: uuid.UUID | None


class SessionCreated(DomainEvent, event_type="session.created", version=1):
    """A sign-in opened a session (device, address and user agent as the client sent them)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    ip: str | None
    user_agent: str | None


class SessionRevoked(DomainEvent, event_type="session.revoked", version=1):
    """A session ended before its expiry; ``reason`` says why (``logout``, ``deleted``…)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    reason: str


class _LinkRequested(DomainEvent):
    """The payload of a mail carrying a single-use link; the token is sealed."""

    user_id: uuid.UUID
    email: str
    full_name: str
    token: Sealed
    expires_at: datetime


class EmailVerificationRequested(
    _LinkRequested, event_type="user.email_verification_requested", version=1
):
    """A verification link is to be mailed; ``token`` is sealed (``events.seal_keys``).

    The courier opens it, builds the link to ``/verify-email?token=…`` and sends the mail.
    The token works once and until ``expires_at``.
    """


class PasswordResetRequested(_LinkRequested, event_type="user.password_reset_requested", version=1):
    """A password-reset link is to be mailed; ``token`` is sealed (``events.seal_keys``).

    The courier opens it, builds the link to ``/reset-password?token=…`` and sends the mail.
    The token works once and until ``expires_at``.
    """


class UserRegistrationAttempted(DomainEvent, event_type="user.registration_attempted", version=1):
    """Someone registered an address that has an account (the enumeration-safe mode).

    The registration was answered like a new one; the courier tells the owner instead.
    """

    user_id: uuid.UUID
    email: str


class EmailChangeRequested(_LinkRequested, event_type="user.email_change_requested", version=1):
    """The user asked to move the account to ``email`` (the new address).

    The courier mails the confirmation link (``/confirm-email-change?token=…``) to ``email``
    and a notice to ``previous_email``; ``token`` is sealed and works once, until
    ``expires_at``, and only while no newer request was made.
    """

    previous_email: str


class UserEmailChanged(DomainEvent, event_type="user.email_changed", version=1):
    """The account's address is now ``email``; its other sessions were revoked."""

    user_id: uuid.UUID
    email: str
    previous_email: str


class MfaEnabled(DomainEvent, event_type="user.mfa_enabled", version=1):
    """The user switched TOTP on."""

    user_id: uuid.UUID
    email: str


class MfaDisabled(DomainEvent, event_type="user.mfa_disabled", version=1):
    """TOTP is off: by the user, or by an administrator's reset (``actor_id``)."""

    user_id: uuid.UUID
    email: str
    actor_id: uuid.UUID | None


class RecoveryCodeUsed(DomainEvent, event_type="user.recovery_code_used", version=1):
    """A recovery code signed the user in; ``remaining`` codes are left."""

    user_id: uuid.UUID
    email: str
    remaining: int


def user_subject(user_id: uuid.UUID) -> str:
    """The subject and partition key of a user's events."""
    return f"user/{user_id}"


def catalog() -> EventCatalog:
    """Every event type the user service publishes."""
    return EventCatalog(
        UserRegistered,
        UserEmailVerified,
        UserProfileUpdated,
        UserPasswordChanged,
        UserRoleChanged,
        UserDeactivated,
        UserReactivated,
        UserDeleted,
        SessionCreated,
        SessionRevoked,
        EmailVerificationRequested,
        PasswordResetRequested,
        UserRegistrationAttempted,
        EmailChangeRequested,
        UserEmailChanged,
        MfaEnabled,
        MfaDisabled,
        RecoveryCodeUsed,
    )
