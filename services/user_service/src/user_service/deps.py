"""Every dependency of the API as an ``Annotated`` alias; endpoints declare only these."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import unquote_plus

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPBasic, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel

from servicekit.auth import (
    InvalidToken,
    Principal,
    ensure_recent_authentication,
    require_any_scope,
    require_scopes,
)
from servicekit.auth.deps import authenticate_token
from servicekit.db import AsyncSession, ConnectionSource
from servicekit.deps import DbSession, ReadConnections, RedisClient, client_address, component
from servicekit.state import app_state
from user_service.config import UserServiceSettings
from user_service.errors import InvalidClient
from user_service.keys import PublishedJwks
from user_service.models import IdempotencyKey, User
from user_service.schemas.user import UserSnapshot
from user_service.services.account import AccountService
from user_service.services.account_recovery import AccountRecoveryService
from user_service.services.admin import AdminService
from user_service.services.audit import AuditTrail
from user_service.services.auth import AuthService
from user_service.services.email_change import EmailChangeService
from user_service.services.idempotency import IdempotencyReplay, idempotency
from user_service.services.mfa import MfaService
from user_service.services.oauth import OAuthService, PresentedClient
from user_service.services.oauth_clients import OAuthClientService
from user_service.services.registration import RegistrationService
from user_service.services.session import SessionService
from user_service.services.signin import ClientInfo
from user_service.services.step_up import StepUpService
from user_service.services.token_admin import TokenAdminService
from user_service.services.user import UserService
from user_service.services.user_cache import CachedUsers

T = TypeVar("T")

_oauth2 = OAuth2PasswordBearer(
    tokenUrl="/oauth/token",
    scheme_name="OAuth2Password",
    description="Sign in with email (as username) and password; the access token is sent as a "
    "Bearer token.",
    auto_error=False,
)


async def get_service_settings(request: Request) -> UserServiceSettings:
    """The user service's settings (the app was built with them)."""
    return cast(UserServiceSettings, app_state(request).settings)


async def get_jwks(request: Request) -> dict[str, Any]:
    """The published JWKS."""
    return app_state(request).get(PublishedJwks).document


Users = Annotated[UserService, Depends(component(UserService))]
Auth = Annotated[AuthService, Depends(component(AuthService))]
Accounts = Annotated[AccountService, Depends(component(AccountService))]
AccountRecovery = Annotated[AccountRecoveryService, Depends(component(AccountRecoveryService))]
Registration = Annotated[RegistrationService, Depends(component(RegistrationService))]
UserAdmin = Annotated[AdminService, Depends(component(AdminService))]
UserSessions = Annotated[SessionService, Depends(component(SessionService))]
TokenAdmin = Annotated[TokenAdminService, Depends(component(TokenAdminService))]
OAuthClients = Annotated[OAuthClientService, Depends(component(OAuthClientService))]
OAuth = Annotated[OAuthService, Depends(component(OAuthService))]
Mfa = Annotated[MfaService, Depends(component(MfaService))]
StepUp = Annotated[StepUpService, Depends(component(StepUpService))]
EmailChange = Annotated[EmailChangeService, Depends(component(EmailChangeService))]
Audit = Annotated[AuditTrail, Depends(component(AuditTrail))]


async def get_current_principal(
    request: Request, token: Annotated[str | None, Depends(_oauth2)]
) -> Principal:
    """The verified, unrevoked access token's principal, or 401."""
    return await authenticate_token(request, token)


async def get_current_user(
    session: DbSession,
    principal: Annotated[Principal, Depends(get_current_principal)],
    users: Users,
) -> User:
    """The principal's user; a deleted or deactivated account invalidates its tokens."""
    user = await users.get_active(session, principal.user_id)
    if user is None:
        raise InvalidToken("The account of this access token is no longer active.")
    return user


async def get_recent_principal(
    request: Request, principal: Annotated[Principal, Depends(get_current_principal)]
) -> Principal:
    """The principal, if its user authenticated within ``auth.step_up_max_age_s`` (RFC 9470)."""
    settings = cast(UserServiceSettings, app_state(request).settings)
    return ensure_recent_authentication(principal, settings.auth.step_up_max_age_s)


async def get_client_info(request: Request) -> ClientInfo:
    """The caller's user agent and address (trusted-proxy aware), recorded on new sessions."""
    return ClientInfo(user_agent=request.headers.get("user-agent"), ip=client_address(request))


async def current_snapshot(request: Request, connections: ConnectionSource) -> UserSnapshot:
    """The bearer token's user through the cache (the hot read path: no session on a hit).

    A plain function, not a dependency: ``GET /users/me`` calls it directly because every
    dependency FastAPI solves costs microseconds on each call. It reads the header the way
    :data:`CurrentPrincipal` does; the route declares the scheme with :data:`BEARER_SECURITY`.
    """
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    principal = await authenticate_token(request, token if scheme.lower() == "bearer" else None)
    snapshot = await app_state(request).get(CachedUsers).get(principal.user_id, connections)
    if snapshot is None or not snapshot.is_active:
        raise InvalidToken("The account of this access token is no longer active.")
    return snapshot


#: ``openapi_extra`` of a route that authenticates with :func:`current_snapshot`.
BEARER_SECURITY: dict[str, Any] = {"security": [{_oauth2.scheme_name: []}]}


class ClientBasicAuth(HTTPBasic):
    """HTTP Basic client authentication, decoded as RFC 6749 §2.3.1 says.

    The id and the secret are form-encoded before they are joined with ``:``, so a secret
    with ``+``, ``/`` or ``=`` arrives escaped; FastAPI's ``HTTPBasic`` does not undo that.
    A malformed header is ``invalid_client``; another scheme (or none) is no credential.
    """

    async def __call__(  # type: ignore[override]
        self, request: Request
    ) -> PresentedClient | None:
        """The presented client credentials, or ``None`` without a Basic header."""
        scheme, param = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(param, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidClient("The Basic credentials are not base64 of id:secret.") from exc
        client_id, colon, secret = decoded.partition(":")
        if not colon or not client_id:
            raise InvalidClient("The Basic credentials are not base64 of id:secret.")
        plain = unquote_plus(secret)
        return PresentedClient(
            unquote_plus(client_id),
            plain,
            undecoded_secret=secret if secret != plain else None,
        )


_client_basic = ClientBasicAuth(
    auto_error=False,
    scheme_name="ClientSecretBasic",
    description="OAuth client id and secret, each form-encoded (RFC 6749 §2.3.1).",
)
BasicClient = Annotated[PresentedClient | None, Depends(_client_basic)]


class IdempotentRequest:
    """The request's claim on its ``Idempotency-Key`` (or nothing, without the header)."""

    def __init__(self, session: AsyncSession, record: IdempotencyKey | None, status: int) -> None:
        self._session = session
        self._record = record
        self._status = status

    async def remember(self, result: T, response: Response) -> T:
        """Store ``result`` as the key's response (same transaction) and return it."""
        if self._record is not None and isinstance(result, BaseModel):
            headers = {k: v for k, v in response.headers.items() if k in _REPLAYED_HEADERS}
            await idempotency.store(
                self._session, self._record, status_code=self._status, headers=headers,
                body=result.model_dump_json(),
            )  # fmt: skip
        return result


_REPLAYED_HEADERS = frozenset({"location", "etag"})


async def get_idempotent_request(
    request: Request,
    session: DbSession,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[!-~]+$",
            description="A unique value (e.g. a UUID) per intended operation. A retry with "
            "the same key and body gets the first response again (`Idempotent-Replayed: "
            "true`); the same key with another body is 422 `idempotency_key_mismatch`. Keys "
            "expire after 24 hours.",
        ),
    ] = None,
) -> IdempotentRequest:
    """Claim the ``Idempotency-Key`` for this operation, or replay its stored response."""
    route = request.scope["route"]
    if key is None:
        return IdempotentRequest(session, None, route.status_code)
    body = await request.body()
    try:  # the same JSON in another key order or spacing is the same request
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or deep JSON sent as another type
        canonical = body
    # Scope: the operation and the caller; these operations are anonymous, and the body
    # hash binds a replay to the exact request (for registration: email and password).
    scope = f"{request.method} {route.path_format}|anonymous"
    record = await idempotency.claim(
        session, scope=scope, key=key, request_hash=hashlib.sha256(canonical).hexdigest()
    )
    return IdempotentRequest(session, record, route.status_code)


async def replay_stored_response(_request: Request, exc: Exception) -> Response:
    """The exception handler answering :class:`IdempotencyReplay` with the stored response."""
    assert isinstance(exc, IdempotencyReplay)  # noqa: S101
    stored = exc.response
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        headers={**stored.headers, "Idempotent-Replayed": "true"},
        media_type="application/json",
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


Settings = Annotated[UserServiceSettings, Depends(get_service_settings)]
IfMatch = Annotated[frozenset[int] | None, Depends(get_if_match)]
Jwks = Annotated[dict[str, Any], Depends(get_jwks)]
CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
#: A user who authenticated recently (step-up): sensitive operations require it.
RecentPrincipal = Annotated[Principal, Depends(get_recent_principal)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminPrincipal = Annotated[
    Principal, Depends(require_scopes("admin", principal_dependency=get_current_principal))
]
#: An administrator, or a service granted ``users:read`` (reads of any user's account).
UserReader = Annotated[
    Principal,
    Depends(require_any_scope("admin", "users:read", principal_dependency=get_current_principal)),
]
Client = Annotated[ClientInfo, Depends(get_client_info)]
Idempotency = Annotated[IdempotentRequest, Depends(get_idempotent_request)]

__all__ = [
    "AccountRecovery",
    "Accounts",
    "AdminPrincipal",
    "Audit",
    "Auth",
    "BasicClient",
    "Client",
    "CurrentPrincipal",
    "CurrentUser",
    "DbSession",
    "EmailChange",
    "Idempotency",
    "IfMatch",
    "Jwks",
    "Mfa",
    "OAuth",
    "OAuthClients",
    "ReadConnections",
    "RecentPrincipal",
    "RedisClient",
    "Registration",
    "Settings",
    "StepUp",
    "TokenAdmin",
    "UserAdmin",
    "UserReader",
    "UserSessions",
    "Users",
]
