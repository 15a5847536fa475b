"""The RFC 6749 token endpoint's rules: client authentication and the grant types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from user_service.errors import InvalidClient, InvalidRequest, UnsupportedGrantType

if TYPE_CHECKING:
    from servicekit.db import AsyncSession
    from user_service.schemas.auth import TokenRequest
    from user_service.services.auth import AuthService, ClientInfo, TokenPair


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a caller presented to authenticate as a client (RFC 6749 §2.3.1)."""

    client_id: str
    secret: str | None
    #: ``client_secret_basic``, ``client_secret_post`` or ``none`` (a public client).
    method: str


def presented_client(
    basic: ClientCredentials | None, client_id: str | None, client_secret: str | None
) -> ClientCredentials | None:
    """The client credentials of a request: HTTP Basic or form fields, never both."""
    if basic is not None:
        if client_secret is not None or (client_id is not None and client_id != basic.client_id):
            raise InvalidRequest("Authenticate the client with one method only.")
        return basic
    if client_id is None:
        if client_secret is not None:
            raise InvalidRequest("client_secret needs client_id.")
        return None
    method = "none" if client_secret is None else "client_secret_post"
    return ClientCredentials(client_id, client_secret, method)


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthService:
    """Dispatches a token request to its grant; never commits."""

    auth: AuthService
    #: The client of first-party apps that sign in without client credentials.
    first_party_client_id: str

    async def token(
        self,
        session: AsyncSession,
        *,
        request: TokenRequest,
        credentials: ClientCredentials | None,
        client: ClientInfo,
    ) -> TokenPair:
        """Answer a token request (RFC 6749 §4.3 password, §6 refresh)."""
        if credentials is not None and (
            credentials.secret is not None or credentials.client_id != self.first_party_client_id
        ):
            raise InvalidClient
        if request.grant_type == "password":
            if not request.username or not request.password:
                raise InvalidRequest("The password grant needs username and password.")
            return await self.auth.login(
                session, email=request.username, password=request.password, client=client
            )
        if request.grant_type == "refresh_token":
            if not request.refresh_token:
                raise InvalidRequest("The refresh_token grant needs refresh_token.")
            return await self.auth.refresh(session, refresh_token=request.refresh_token)
        raise UnsupportedGrantType
