"""Discovery documents other services read: the JWKS and RFC 8414 server metadata.

There is no OpenID Connect document: the service issues no ID tokens and has no
authorization endpoint, so it is an OAuth 2 authorization server, not an OpenID provider.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from user_service.deps import Jwks, Settings
from user_service.services.oauth import GRANT_TYPES
from user_service.tokens import SUPPORTED_SCOPES

router = APIRouter(prefix="/.well-known", tags=["discovery"])

_CONFIDENTIAL = ["client_secret_basic", "client_secret_post"]


@router.get("/jwks.json")
async def jwks(keys: Jwks, settings: Settings, response: Response) -> dict[str, Any]:
    """The public keys that verify access tokens (the active key and rotated ones)."""
    response.headers["Cache-Control"] = f"public, max-age={settings.jwt.jwks_max_age_s}"
    return keys


@router.get("/oauth-authorization-server")
async def authorization_server_metadata(settings: Settings, response: Response) -> dict[str, Any]:
    """RFC 8414 metadata: where the endpoints are and what they support."""
    issuer = settings.jwt.issuer.rstrip("/")
    response.headers["Cache-Control"] = "public, max-age=300"
    return {
        "issuer": settings.jwt.issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "grant_types_supported": sorted(GRANT_TYPES),
        # Required by RFC 8414 though no grant here uses an authorization endpoint (there
        # is none): "none" is the one response type that promises no token.
        "response_types_supported": ["none"],
        "scopes_supported": sorted(SUPPORTED_SCOPES),
        # "none": first-party apps are a public client (password and refresh grants).
        "token_endpoint_auth_methods_supported": [*_CONFIDENTIAL, "none"],
        "revocation_endpoint_auth_methods_supported": [*_CONFIDENTIAL, "none"],
        "introspection_endpoint_auth_methods_supported": _CONFIDENTIAL,
        "service_documentation": f"{issuer}/docs",
    }
