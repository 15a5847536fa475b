"""Every dependency of the API as an ``Annotated`` alias; endpoints declare only these."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from servicekit.auth import InvalidToken, Principal, require_scopes
from servicekit.auth.deps import authenticate_token
from servicekit.deps import DbSession, RedisClient
from user_service.models import User
from user_service.services.auth import ClientInfo
from user_service.services.context import IdentityContext
from user_service.services.user import users

_oauth2 = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/login",
    scheme_name="OAuth2Password",
    description="Sign in with email (as username) and password; the access token is sent as a "
    "Bearer token.",
    auto_error=False,
)


def get_identity(request: Request) -> IdentityContext:
    """The identity context built at start-up."""
    ctx: IdentityContext = request.state.identity
    return ctx


def get_jwks(request: Request) -> dict[str, Any]:
    """The published JWKS."""
    jwks: dict[str, Any] = request.state.jwks
    return jwks


async def get_current_principal(
    request: Request, token: Annotated[str | None, Depends(_oauth2)]
) -> Principal:
    """The verified, unrevoked access token's principal, or 401."""
    return await authenticate_token(request, token)


async def get_current_user(
    session: DbSession, principal: Annotated[Principal, Depends(get_current_principal)]
) -> User:
    """The principal's user; a deleted or deactivated account invalidates its tokens."""
    user = await users.get_active(session, principal.user_id)
    if user is None:
        raise InvalidToken("The account of this access token is no longer active.")
    return user


def get_client_info(request: Request) -> ClientInfo:
    """The caller's user agent and address, recorded on new sessions."""
    return ClientInfo(
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )


Identity = Annotated[IdentityContext, Depends(get_identity)]
Jwks = Annotated[dict[str, Any], Depends(get_jwks)]
CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminPrincipal = Annotated[
    Principal, Depends(require_scopes("admin", principal_dependency=get_current_principal))
]
Client = Annotated[ClientInfo, Depends(get_client_info)]

__all__ = [
    "AdminPrincipal",
    "Client",
    "CurrentPrincipal",
    "CurrentUser",
    "DbSession",
    "Identity",
    "Jwks",
    "RedisClient",
]
