"""FastAPI dependencies: the current principal and scope requirements.

No ``from __future__ import annotations`` here: FastAPI must see the real ``Annotated``
objects of the closure in :func:`require_scopes`, which string annotations would hide.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicekit.auth.authenticator import Authenticator
from servicekit.auth.errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    NotAuthenticated,
)
from servicekit.auth.principal import Principal
from servicekit.context import current_request, user_id_var
from servicekit.state import app_state

PrincipalDependency = Callable[..., Awaitable[Principal]]


async def get_authenticator(request: Request) -> Authenticator:
    """The authenticator built at start-up (``AppState.auth``).

    Dependencies here are ``async`` even when they do no I/O: FastAPI runs plain ``def``
    dependencies in a thread pool, a thread hop per request on the hot path.
    """
    return app_state(request).authenticator()


async def authenticate_token(request: Request, token: str | None) -> Principal:
    """Authenticate ``token`` and bind the user id into every later log line."""
    if not token:
        raise NotAuthenticated
    principal = await app_state(request).authenticator().authenticate(token)
    # Logged from here on (the chassis resets it): the user, or the calling service.
    user_id_var.set(principal.client_id if principal.is_service else principal.user_id)
    context = current_request()
    if context is not None:  # for what the request records about its actor (an audit trail)
        context.principal = principal
    return principal


_bearer = HTTPBearer(auto_error=False, description="An access token from the user service.")
#: ``openapi_extra`` of a route that authenticates with :func:`request_principal`.
BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


async def request_principal(request: Request) -> Principal:
    """The principal of the request's bearer token, read without a FastAPI dependency.

    For the hottest routes: every dependency FastAPI solves costs microseconds per call.
    Declare the scheme with ``openapi_extra=BEARER_SECURITY``.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return await authenticate_token(request, token.strip() if scheme.lower() == "bearer" else None)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated principal (``Authorization: Bearer …``), or 401."""
    return await authenticate_token(request, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_scopes(
    *scopes: str, principal_dependency: PrincipalDependency = get_principal
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the principal if it holds every scope in ``scopes``, else 403."""

    async def dependency(
        principal: Annotated[Principal, Depends(principal_dependency)],
    ) -> Principal:
        if not principal.has_scopes(*scopes):
            raise InsufficientScope(" ".join(scopes))
        return principal

    return dependency


def require_any_scope(
    *scopes: str, principal_dependency: PrincipalDependency = get_principal
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the principal if it holds one of ``scopes``, else 403.

    E.g. ``require_any_scope("admin", "users:read")``: an administrator, or a service
    whose client was granted ``users:read``.
    """

    async def dependency(
        principal: Annotated[Principal, Depends(principal_dependency)],
    ) -> Principal:
        if not principal.scopes.intersection(scopes):
            raise InsufficientScope(" ".join(scopes))
        return principal

    return dependency


def ensure_recent_authentication(principal: Principal, max_age_s: int) -> Principal:
    """The principal, if its user authenticated at most ``max_age_s`` ago (RFC 9470).

    Otherwise 401 ``insufficient_user_authentication`` with ``max_age`` in the challenge:
    the client re-authenticates the user and retries. A token without ``auth_time`` (or a
    service's own token) never counts as recent.
    """
    if principal.is_service or not principal.authenticated_within(max_age_s, datetime.now(UTC)):
        raise InsufficientUserAuthentication(max_age_s)
    return principal
