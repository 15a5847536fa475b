"""Sealed event fields: a secret (an emailed link's token) never travels or rests in clear.

An event field typed :data:`Sealed` holds a Fernet token (AES-128-CBC with an HMAC-SHA256
over it: authenticated encryption from ``cryptography``), so the secret is unreadable in
the outbox, in the streams, in a dead-letter entry and in any log line that prints the
event; a token changed by one bit fails to open. The keys come from ``events.seal_keys``,
shared by the producing and the consuming services: the first seals, every one opens, so a
key is rotated by putting the new one first and dropping the old one once no event sealed
with it is left (the stream retention and the longest link lifetime bound that).

Each configured key is a secret string of any length; the Fernet key is derived from it
with HKDF-SHA256, so operators handle the same kind of value as every other secret here.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import SecretStr

#: The type of an event field holding a sealed secret (see :class:`Sealer`).
Sealed = Annotated[
    str,
    Field(
        description="A secret sealed with the events' key (a Fernet token); open it with "
        "servicekit.events.Sealer.",
        json_schema_extra={"contentEncoding": "base64", "x-sealed": True},
    ),
]

_INFO = b"servicekit.events.seal"


class SealError(ValueError):
    """A sealed value that no configured key opens, or that was altered."""


def _fernet(secret: str, info: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class Sealer:
    """Seals with the first of ``keys`` and opens with any of them.

    ``purpose`` separates the uses of one key: a value sealed for one purpose does not open
    for another (it is the HKDF ``info``).
    """

    def __init__(self, keys: Sequence[SecretStr], *, purpose: bytes = _INFO) -> None:
        if not keys:
            raise ValueError("no sealing key is configured: at least one key is needed")
        self._fernet = MultiFernet([_fernet(key.get_secret_value(), purpose) for key in keys])

    def seal(self, secret: str) -> str:
        """The sealed form of ``secret`` (a new random IV each time)."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def reseal(self, sealed: str) -> str:
        """``sealed`` sealed again with the first key (a rotation); raises :class:`SealError`."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise SealError("the sealed value cannot be opened with the configured keys") from exc

    def open(self, sealed: str, *, max_age_s: int | None = None) -> str:
        """The secret inside ``sealed``.

        Raises :class:`SealError` if no key opens it, it was altered, or it was sealed more
        than ``max_age_s`` ago.
        """
        try:
            return self._fernet.decrypt(sealed.encode("ascii"), ttl=max_age_s).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SealError("the sealed value cannot be opened with the configured keys") from exc
