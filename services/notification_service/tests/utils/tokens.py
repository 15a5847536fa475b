"""Access tokens as the user service issues them, signed with a key of the test's own.

The notification service fetches the matching JWKS over HTTP (here from a small app served
through httpx) and reads revocations from the user service's denylist in Redis.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from notification_service.config import UsersSettings

KID = "test-key"


class Issuer:
    """Signs EdDSA access tokens and publishes their JWKS."""

    def __init__(self, users: UsersSettings) -> None:
        self.users = users
        self.key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        public: dict[str, Any] = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": KID, "alg": "EdDSA", "use": "sig"}]}

    def token(
        self, user_id: uuid.UUID, *, scopes: str = "", session_id: uuid.UUID | None = None
    ) -> str:
        """A token for ``user_id`` valid for five minutes."""
        now = int(time.time())
        claims = {
            "iss": self.users.issuer,
            "aud": self.users.audience,
            "sub": str(user_id),
            "sid": str(session_id or uuid.uuid4()),
            "scope": scopes,
            "client_id": "first-party",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        return jwt.encode(
            claims, self.key, algorithm="EdDSA", headers={"kid": KID, "typ": "at+jwt"}
        )

    def app(self) -> FastAPI:
        """The issuer's JWKS endpoint."""
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return self.jwks()

        return app


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}
