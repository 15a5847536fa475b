"""Token verification for every service: JWKS keys, strict JWT checks, session revocation.

A resource service needs three lines::

    app = create_app(settings, routers, on_startup=[jwks_auth(jwks_url, issuer, audience)])

    @router.get("/things")
    async def things(principal: CurrentPrincipal) -> ...: ...

and ``Depends(require_scopes("admin"))`` where a scope is needed.
"""

from servicekit.auth.authenticator import Authenticator
from servicekit.auth.denylist import RevocationUnavailable, SessionDenylist
from servicekit.auth.deps import (
    BEARER_SECURITY,
    CurrentPrincipal,
    ensure_recent_authentication,
    get_principal,
    request_principal,
    require_any_scope,
    require_scopes,
)
from servicekit.auth.errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidToken,
    NotAuthenticated,
    UserTokenRequired,
)
from servicekit.auth.keys import KeySource, RemoteJWKS, StaticKeySource
from servicekit.auth.principal import Principal
from servicekit.auth.setup import jwks_auth
from servicekit.auth.verifier import SUPPORTED_ALGORITHMS, TokenVerifier

__all__ = [
    "BEARER_SECURITY",
    "SUPPORTED_ALGORITHMS",
    "Authenticator",
    "CurrentPrincipal",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidToken",
    "KeySource",
    "NotAuthenticated",
    "Principal",
    "RemoteJWKS",
    "RevocationUnavailable",
    "SessionDenylist",
    "StaticKeySource",
    "TokenVerifier",
    "UserTokenRequired",
    "ensure_recent_authentication",
    "get_principal",
    "jwks_auth",
    "request_principal",
    "require_any_scope",
    "require_scopes",
]
