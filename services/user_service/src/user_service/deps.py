"""Every dependency of the API as an ``Annotated`` alias; endpoints declare only these."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer

from servicekit.auth import Authenticator, InvalidToken, Principal, require_scopes
from servicekit.auth.deps import authenticate_token, get_authenticator
from servicekit.deps import DbSession, ReadSessions, RedisClient, client_address
from user_service.models import User
from user_service.schemas.user import UserSnapshot
from user_service.services.auth import ClientInfo
from user_service.services.context import IdentityContext
from user_service.services.user import users
from user_service.services.user_cache import get_user_snapshot

_oauth2 = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/login",
    scheme_name="OAuth2Password",
    description="Sign in with email (as username) and password; the access token is sent as a "
    "Bearer token.",
    auto_error=False,
)


async def get_identity(request: Request) -> IdentityContext:
    """The identity context built at start-up."""
    ctx: IdentityContext = request.state.identity
    return ctx


async def get_jwks(request: Request) -> dict[str, Any]:
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


async def get_client_info(request: Request) -> ClientInfo:
    """The caller's user agent and address (trusted-proxy aware), recorded on new sessions."""
    return ClientInfo(user_agent=request.headers.get("user-agent"), ip=client_address(request))


async def get_current_snapshot(
    sessions: ReadSessions,
    ctx: Annotated[IdentityContext, Depends(get_identity)],
    principal: Annotated[Principal, Depends(get_current_principal)],
) -> UserSnapshot:
    """The principal's user through the cache (the hot read path: no session on a hit)."""
    snapshot = await get_user_snapshot(ctx.user_cache, principal.user_id, sessions)
    if snapshot is None or not snapshot.is_active:
        raise InvalidToken("The account of this access token is no longer active.")
    return snapshot


_introspection_client = HTTPBasic(
    auto_error=False, realm="introspection", description="A service credential from settings."
)


_MAX_VERSION_DIGITS = 18


async def get_if_match(
    if_match: Annotated[
        str | None,
        Header(
            description="An `ETag` from an earlier response: apply the change only if it is "
            "still current (412 otherwise)."
        ),
    ] = None,
) -> frozenset[int] | None:
    """The versions ``If-Match`` names; ``None`` when absent or ``*`` (any current version).

    Weak tags (``W/"…"``) and tags never issued match nothing (RFC 9110 strong comparison).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions: set[int] = set()
    for raw in if_match.split(","):
        tag = raw.strip()
        inner = tag[1:-1]
        if (
            len(tag) >= 3
            and tag[0] == tag[-1] == '"'
            and inner.isascii()
            and inner.isdigit()
            and len(inner) <= _MAX_VERSION_DIGITS
        ):
            versions.add(int(inner))
    return frozenset(versions)


Identity = Annotated[IdentityContext, Depends(get_identity)]
TokenAuthenticator = Annotated[Authenticator, Depends(get_authenticator)]
IntrospectionClient = Annotated[HTTPBasicCredentials | None, Depends(_introspection_client)]
IfMatch = Annotated[frozenset[int] | None, Depends(get_if_match)]
Jwks = Annotated[dict[str, Any], Depends(get_jwks)]
CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
CurrentUser = Annotated[User, Depends(get_current_user)]
CachedCurrentUser = Annotated[UserSnapshot, Depends(get_current_snapshot)]
AdminPrincipal = Annotated[
    Principal, Depends(require_scopes("admin", principal_dependency=get_current_principal))
]
Client = Annotated[ClientInfo, Depends(get_client_info)]

__all__ = [
    "AdminPrincipal",
    "CachedCurrentUser",
    "Client",
    "CurrentPrincipal",
    "CurrentUser",
    "DbSession",
    "Identity",
    "IfMatch",
    "IntrospectionClient",
    "Jwks",
    "RedisClient",
    "TokenAuthenticator",
]
