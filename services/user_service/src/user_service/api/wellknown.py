"""Discovery documents other services read: the JWKS and an OpenID-style configuration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from user_service.deps import Jwks, Settings

router = APIRouter(prefix="/.well-known", tags=["discovery"])


@router.get("/jwks.json")
async def jwks(keys: Jwks, settings: Settings, response: Response) -> dict[str, Any]:
    """The public keys that verify access tokens (the active key and rotated ones)."""
    response.headers["Cache-Control"] = f"public, max-age={settings.jwt.jwks_max_age_s}"
    return keys


@router.get("/openid-configuration")
async def openid_configuration(
    keys: Jwks, settings: Settings, response: Response
) -> dict[str, Any]:
    """Where the endpoints are and what they support."""
    issuer = settings.jwt.issuer.rstrip("/")
    response.headers["Cache-Control"] = "public, max-age=300"
    return {
        "issuer": settings.jwt.issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/api/v1/auth/revoke",
        "introspection_endpoint": f"{issuer}/api/v1/auth/introspect",
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": sorted({k["alg"] for k in keys["keys"]}),
        "scopes_supported": ["user", "admin"],
        "subject_types_supported": ["public"],
    }
