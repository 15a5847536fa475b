"""The user service's events as this service reads them: only the fields it uses.

Each class names the producer's type and version (see the user service's
``docs/events.md``); fields added by the producer later are ignored.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.events import ConsumedEvent, EventCatalog, Sealed


class Registered(ConsumedEvent, event_type="user.registered", version=1):
    """An account was created."""

    user_id: uuid.UUID
    email: str
    full_name: str


class _LinkRequested(ConsumedEvent):
    """A mail with a single-use link is to be sent (``token`` sealed)."""

    user_id: uuid.UUID
    email: str
    full_name: str
    token: Sealed
    expires_at: datetime


class VerificationRequested(_LinkRequested, event_type="user.email_verification_requested"):
    """A verification link is to be mailed (``token`` sealed)."""


class ResetRequested(_LinkRequested, event_type="user.password_reset_requested", version=1):
    """A password-reset link is to be mailed (``token`` sealed)."""


class EmailVerified(ConsumedEvent, event_type="user.email_verified", version=1):
    """The address was confirmed: time for the welcome mail."""

    user_id: uuid.UUID
    email: str


class ProfileUpdated(ConsumedEvent, event_type="user.profile_updated", version=1):
    """The user's name changed."""

    user_id: uuid.UUID
    full_name: str


class PasswordChanged(ConsumedEvent, event_type="user.password_changed", version=1):
    """The password changed (``method``: ``changed`` or ``reset``)."""

    user_id: uuid.UUID
    email: str
    method: str


class Deactivated(ConsumedEvent, event_type="user.deactivated", version=1):
    """An administrator deactivated the account."""

    user_id: uuid.UUID
    email: str


class Deleted(ConsumedEvent, event_type="user.deleted", version=1):
    """The account is gone: erase what is kept of it, then say goodbye."""

    user_id: uuid.UUID
    email: str


class RegistrationAttempted(ConsumedEvent, event_type="user.registration_attempted", version=1):
    """Someone registered the address of an existing account: tell its owner."""

    user_id: uuid.UUID
    email: str


class EmailChangeRequested(_LinkRequested, event_type="user.email_change_requested", version=1):
    """A move to ``email`` (the new address) awaits its link; ``previous_email`` is told."""

    previous_email: str


class EmailChanged(ConsumedEvent, event_type="user.email_changed", version=1):
    """The account's address is now ``email``: tell ``previous_email``, mail ``email`` next."""

    user_id: uuid.UUID
    email: str
    previous_email: str


class MfaEnabled(ConsumedEvent, event_type="user.mfa_enabled", version=1):
    """The user switched two-factor authentication on."""

    user_id: uuid.UUID
    email: str


class MfaDisabled(ConsumedEvent, event_type="user.mfa_disabled", version=1):
    """Two-factor authentication is off: by the user, or by an administrator (``actor_id``)."""

    user_id: uuid.UUID
    email: str
    actor_id: uuid.UUID | None


class RecoveryCodeUsed(ConsumedEvent, event_type="user.recovery_code_used", version=1):
    """A recovery code signed the user in; ``remaining`` are left."""

    user_id: uuid.UUID
    email: str
    remaining: int


class SessionCreated(ConsumedEvent, event_type="session.created", version=1):
    """A sign-in opened a session."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    ip: str | None
    user_agent: str | None


def catalog() -> EventCatalog:
    """Every event type this service consumes."""
    return EventCatalog(
        Registered,
        VerificationRequested,
        ResetRequested,
        EmailVerified,
        ProfileUpdated,
        PasswordChanged,
        Deactivated,
        Deleted,
        RegistrationAttempted,
        SessionCreated,
        EmailChangeRequested,
        EmailChanged,
        MfaEnabled,
        MfaDisabled,
        RecoveryCodeUsed,
    )
