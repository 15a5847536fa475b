"""Access tokens (signed JWTs) and opaque refresh tokens (random, stored hashed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt

from servicekit.db.orm import utcnow
from user_service.models import Role

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from user_service.config import JwtSettings
    from user_service.keys import SigningKey

ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.USER: ("user",),
    Role.ADMIN: ("user", "admin"),
}
#: Scopes a client may be granted that this service itself honours.
SERVICE_SCOPES = ("users:read",)
SUPPORTED_SCOPES = frozenset(
    {*SERVICE_SCOPES, *(s for scopes in ROLE_SCOPES.values() for s in scopes)}
)


@dataclass(frozen=True)
class AccessToken:
    """A signed access token and its lifetime in seconds."""

    token: str
    expires_in: int


class TokenIssuer:
    """Signs access tokens with the active key (``kid`` in the header)."""

    def __init__(self, settings: JwtSettings, key: SigningKey) -> None:
        self.settings = settings
        self.key = key

    def access_token(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        scopes: Iterable[str],
        client_id: str,
        auth_time: datetime,
        amr: Sequence[str],
    ) -> AccessToken:
        """A token for ``user_id`` in session ``session_id``, issued to ``client_id``.

        ``auth_time`` and ``amr`` say when and how the user last authenticated in the
        session (OpenID Connect Core §2, RFC 8176): resource servers judge step-up by them.
        """
        return self._sign(
            subject=str(user_id),
            session_id=session_id,
            scopes=scopes,
            client_id=client_id,
            audience=self.settings.audience,
            extra={"auth_time": int(auth_time.timestamp()), "amr": list(amr)},
        )

    def service_token(
        self, *, client_id: str, revocation_id: uuid.UUID, scopes: Iterable[str], audience: str
    ) -> AccessToken:
        """A client's own token (client credentials): the client is the subject (RFC 9068 §2.2).

        Its ``sid`` is the client's revocation id, so disabling the client revokes it.
        """
        return self._sign(
            subject=client_id,
            session_id=revocation_id,
            scopes=scopes,
            client_id=client_id,
            audience=audience,
        )

    def _sign(
        self,
        *,
        subject: str,
        session_id: uuid.UUID,
        scopes: Iterable[str],
        client_id: str,
        audience: str,
        extra: dict[str, object] | None = None,
    ) -> AccessToken:
        now = utcnow()
        ttl = self.settings.access_ttl_s
        claims = {
            "iss": self.settings.issuer,
            "aud": audience,
            "sub": subject,
            "client_id": client_id,
            "sid": str(session_id),
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl),
            "jti": uuid.uuid4().hex,
            **(extra or {}),
        }
        token = jwt.encode(
            claims,
            self.key.private_key,
            algorithm=self.key.algorithm,
            headers={"kid": self.key.kid, "typ": "at+jwt"},
        )
        return AccessToken(token=token, expires_in=ttl)


def new_opaque_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored: the SHA-256 of the token (it has 256 bits of entropy, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def successor_refresh_token(secret: str, token: str) -> str:
    """The token that replaces ``token`` at rotation.

    Derived with a server-side key rather than drawn at random so that, within the grace
    window, a concurrent refresh of the same token can be answered with the very same
    successor without ever storing a token in clear.
    """
    mac = hmac.new(secret.encode(), b"refresh-rotation\x00" + token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
