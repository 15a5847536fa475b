"""The kinds of mail: which are security notices (always sent) and which carry a link."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MailKind:
    """One kind of mail and its template (``templates/<name>.txt.j2`` and ``.html.j2``)."""

    name: str
    #: Security notices cannot be switched off.
    security: bool
    #: The user service's page the mail links to, with the sealed token (``None``: no link).
    link_path: str | None = None
    #: The address is erased from the delivery once sent (the account no longer exists).
    erase_after_send: bool = False
    #: Sent to the address the event named (one the account is leaving or left), never to
    #: the user's current one; a link's mail always goes to the address it was issued for.
    to_event_address: bool = False


KINDS = {
    kind.name: kind
    for kind in (
        MailKind("verify_email", security=True, link_path="/verify-email"),
        MailKind("password_reset", security=True, link_path="/reset-password"),
        MailKind("welcome", security=False),
        MailKind("password_changed", security=True),
        MailKind("new_sign_in", security=True),
        MailKind("account_deactivated", security=True),
        MailKind("account_deleted", security=True, erase_after_send=True),
        MailKind("account_exists", security=True),
        MailKind("email_change", security=True, link_path="/confirm-email-change"),
        MailKind("email_change_notice", security=True, to_event_address=True),
        MailKind("email_changed", security=True, to_event_address=True),
        MailKind("mfa_enabled", security=True),
        MailKind("mfa_disabled", security=True),
        MailKind("recovery_code_used", security=True),
    )
}
#: The kinds a user may switch off.
OPTIONAL_KINDS = frozenset(name for name, kind in KINDS.items() if not kind.security)
