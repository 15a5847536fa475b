"""Strict access-token verification: explicit algorithms, issuer, audience, required claims."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import jwt
from jwt.exceptions import InvalidTokenError

from servicekit.auth.errors import InvalidToken
from servicekit.auth.principal import Principal

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servicekit.auth.keys import KeySource

#: Claims every access token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "scope", "client_id")
#: Asymmetric algorithms only; never ``none`` or an HMAC that a public key could forge.
SUPPORTED_ALGORITHMS = ("EdDSA", "RS256")
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class TokenVerifier:
    """Verifies signature, algorithm, ``kid``, ``typ``, issuer, audience and time claims."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = SUPPORTED_ALGORITHMS,
        leeway_s: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        unsupported = set(algorithms) - set(SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ValueError(f"unsupported token algorithms: {sorted(unsupported)}")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway_s = leeway_s
        # Signature checks cost ~150 µs (EdDSA); a token is verified once, then served from
        # here until it expires. Bounded, oldest evicted first.
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self.cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises :class:`InvalidToken` otherwise.

        Revocation is not checked here (see :class:`servicekit.auth.SessionDenylist`).
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at.timestamp() + self.leeway_s > time.time():
                return cached
            del self._verified[token]
        principal = await self._verify(token)
        self._verified[token] = principal
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError as exc:
            raise InvalidToken("The access token is malformed.") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if str(header.get("typ", "")).lower() not in _ACCESS_TOKEN_TYPES:
            # RFC 9068 §4: an ID token or another JWT signed by the same key is not one.
            raise InvalidToken("The token is not an access token (typ at+jwt).")
        if alg not in self.algorithms or not isinstance(kid, str):
            raise InvalidToken("The access token uses an unexpected algorithm or key.")
        key = await self.keys.get(kid)
        if key is None or key.algorithm_name != alg:
            raise InvalidToken("The access token was signed by an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            )
            principal = Principal(
                subject=str(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                scopes=frozenset(str(claims["scope"]).split()),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                client_id=str(claims["client_id"]),
                auth_time=_auth_time(claims.get("auth_time")),
                amr=_amr(claims.get("amr")),
            )
            if not principal.is_service:
                uuid.UUID(principal.subject)  # a user's subject is a user id
            return principal
        except InvalidTokenError as exc:
            raise InvalidToken(f"The access token is invalid: {exc}.") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("The access token carries malformed claims.") from exc


def _auth_time(value: object) -> datetime | None:
    """The ``auth_time`` claim (seconds since the epoch), if the token has a valid one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _amr(value: object) -> tuple[str, ...]:
    """The ``amr`` claim (a list of strings, RFC 8176); anything else counts as none."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()
