"""The one canonical form of an email address, used by every path that takes one.

Registration, sign-in, password reset, verification, email change and the admin listing all
reduce an address with :func:`normalize_email`, so the exact string a user registered with
always finds the account, and two spellings of one address never make two accounts.

Policy (docs/architecture.md, "Email addresses"):

- **Compatibility forms fold** (Unicode NFKC, before anything else): ``dupe@example.test``
  typed in full-width letters (U+FF44 ...) is ``dupe@example.test``, a decomposed ``e`` +
  U+0301 is ``é``.
- **Domains** are checked and converted by IDNA 2008 (email-validator) and stored as
  lower-case U-labels: ``x@xn--bcher-kva.test`` and ``x@Bücher.test`` are ``x@bücher.test``.
- **Local parts are lower-cased.** RFC 5321 lets a server treat them case-sensitively, but no
  mainstream one does, and two accounts differing only in case are an impersonation risk.
- **Look-alikes across scripts are refused**: a local part or domain label that mixes scripts
  beyond Unicode TR39's *Highly Restrictive* level (one script, or Latin with the CJK sets)
  is not a valid address, so ``dupe`` spelt with a Cyrillic ``p`` (U+0440) cannot sit beside
  ``dupe``.
  Addresses written wholly in another script (Cyrillic, Greek) are accepted: they are
  distinct addresses, and refusing them would refuse most of their users.
"""

from __future__ import annotations

import unicodedata

import email_validator
from confusable_homoglyphs import categories

_NEUTRAL = frozenset({"COMMON", "INHERITED"})
#: Script sets TR39's Highly Restrictive level accepts together (besides any single script).
_CJK_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


class InvalidEmailAddress(ValueError):
    """The text is not an address we accept; ``args[0]`` says why, for the client."""


def canonical_email(value: str) -> str:
    """The canonical form of an address, or :class:`InvalidEmailAddress` with the reason."""
    if "\r" in value or "\n" in value:
        raise InvalidEmailAddress("Carriage return and line feed characters are not allowed")
    folded = unicodedata.normalize("NFKC", value.strip())
    try:
        checked = email_validator.validate_email(
            folded, check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidEmailAddress(str(exc.args[0])) from exc
    local = checked.local_part.lower()
    for part in (local, *checked.domain.split(".")):
        if _mixes_scripts(part):
            raise InvalidEmailAddress(f"{part!r} mixes characters of different scripts")
    return f"{local}@{checked.domain}"


def normalize_email(value: str) -> str:
    """The lookup key of whatever a client typed as an address.

    The canonical form of a valid address; anything else (no account can hold it, as
    registration refuses it) is only folded and lower-cased, so a lookup finds nothing
    instead of raising.
    """
    try:
        return canonical_email(value)
    except InvalidEmailAddress:
        return unicodedata.normalize("NFKC", value).strip().lower()


def _mixes_scripts(text: str) -> bool:
    scripts = frozenset(categories.unique_aliases(text)) - _NEUTRAL
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _CJK_SETS)
