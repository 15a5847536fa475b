"""The RFC 6749 token endpoint's rules: client authentication and the grant types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from user_service.errors import (
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from user_service.services.audit import Actor, AuditAction
from user_service.services.signin import TokenPair

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.models import OAuthClient
    from user_service.schemas.auth import TokenRequest
    from user_service.services.audit import AuditTrail
    from user_service.services.auth import AuthService
    from user_service.services.oauth_clients import OAuthClientService
    from user_service.services.signin import ClientInfo
    from user_service.tokens import TokenIssuer

GRANT_TYPES = frozenset({"password", "refresh_token", "client_credentials"})
#: What the first-party public client may do: sign a user in and refresh.
PUBLIC_GRANTS = ("password", "refresh_token")


@dataclass(frozen=True, slots=True)
class PresentedClient:
    """What a caller presented to authenticate as a client (RFC 6749 §2.3.1)."""

    client_id: str
    #: ``None``: a public client (first-party apps), which sends only its id.
    secret: str | None
    #: A Basic secret before form-decoding, when that changes it: some clients (Authlib)
    #: do not form-encode as §2.3.1 asks, so a secret with ``+`` is accepted either way.
    undecoded_secret: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The secrets this presentation may mean."""
        given = (self.secret, self.undecoded_secret)
        return tuple(secret for secret in given if secret is not None)


def presented_client(
    basic: PresentedClient | None, client_id: str | None, client_secret: str | None
) -> PresentedClient | None:
    """The client credentials of a request: HTTP Basic or form fields, never both.

    Empty form fields count as absent (HTML forms and some clients send them).
    """
    client_id, client_secret = client_id or None, client_secret or None
    if basic is not None:
        if client_secret is not None or (client_id is not None and client_id != basic.client_id):
            raise InvalidRequest("Authenticate the client with one method only.")
        return basic
    if client_id is None:
        if client_secret is not None:
            raise InvalidRequest("client_secret needs client_id.")
        return None
    return PresentedClient(client_id, client_secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthService:
    """Authenticates the client and dispatches a token request to its grant; never commits."""

    auth: AuthService
    clients: OAuthClientService
    issuer: TokenIssuer
    #: The public client of first-party apps (no secret; password and refresh grants).
    first_party_client_id: str
    audit: AuditTrail

    async def token(
        self,
        session: AsyncSession,
        *,
        request: TokenRequest,
        credentials: PresentedClient | None,
        client: ClientInfo,
    ) -> TokenPair:
        """Answer a token request (RFC 6749 §4.3 password, §4.4 client credentials, §6 refresh)."""
        grant = request.grant_type
        if grant not in GRANT_TYPES:
            raise UnsupportedGrantType
        registered = await self.clients.caller(session, credentials)
        client_id = registered.id if registered else self.first_party_client_id
        allowed = registered.grant_types if registered else PUBLIC_GRANTS
        if grant not in allowed:
            raise UnauthorizedClient
        if grant == "password":
            if not request.username or not request.password:
                raise InvalidRequest("The password grant needs username and password.")
            return await self.auth.login(
                session,
                email=request.username,
                password=request.password,
                client=client,
                client_id=client_id,
            )
        if grant == "refresh_token":
            if not request.refresh_token:
                raise InvalidRequest("The refresh_token grant needs refresh_token.")
            return await self.auth.refresh(
                session, refresh_token=request.refresh_token, client_id=client_id
            )
        assert registered is not None  # noqa: S101 - public clients have no such grant
        pair = self._service_token(registered, request.scope)
        await self.audit.record(
            session,
            AuditAction.CLIENT_TOKEN_ISSUED,
            subject_id=None,
            actor=Actor(client_id=registered.id),
            scope=pair.scope,
        )
        return pair

    def _service_token(self, registered: OAuthClient, scope: str | None) -> TokenPair:
        requested = set(scope.split()) if scope else set(registered.scopes)
        if not requested <= set(registered.scopes):
            raise InvalidScope
        scopes = sorted(requested)
        access = self.issuer.service_token(
            client_id=registered.id,
            revocation_id=registered.revocation_id,
            scopes=scopes,
            audience=registered.audience,
        )
        return TokenPair(
            access_token=access.token,
            expires_in=access.expires_in,
            refresh_token=None,
            scope=" ".join(scopes),
            session_id=None,
        )
