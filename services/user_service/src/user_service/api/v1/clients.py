"""``/clients`` for administrators: register OAuth clients, rotate secrets, disable them.

A secret is shown once, in the answer that created or rotated it; only its hash is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from servicekit.auth import InsufficientScope, InvalidToken, NotAuthenticated
from servicekit.http import problem_responses
from user_service.deps import AdminPrincipal, DbSession, OAuthClients
from user_service.errors import ClientAlreadyRegistered, ClientNotFound
from user_service.schemas.oauth_client import ClientCreate, ClientRead, ClientWithSecret

router = APIRouter(prefix="/clients", tags=["admin"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken, InsufficientScope)


def _with_secret(client: object, secret: str) -> ClientWithSecret:
    read = ClientRead.model_validate(client)
    return ClientWithSecret(**read.model_dump(), client_secret=secret)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_AUTH_ERRORS, ClientAlreadyRegistered, 422),
)
async def create_client(
    body: ClientCreate, _admin: AdminPrincipal, session: DbSession, clients: OAuthClients
) -> ClientWithSecret:
    """Register a client; the answer holds its secret, shown only this once."""
    client, secret = await clients.create(session, spec=body)
    return _with_secret(client, secret)


@router.get("", responses=problem_responses(*_AUTH_ERRORS))
async def list_clients(
    _admin: AdminPrincipal, session: DbSession, clients: OAuthClients
) -> list[ClientRead]:
    """Every registered client, disabled ones included (never their secrets)."""
    return [ClientRead.model_validate(client) for client in await clients.list(session)]


@router.post(
    "/{client_id}/rotate-secret",
    responses=problem_responses(*_AUTH_ERRORS, ClientNotFound, 422),
)
async def rotate_client_secret(
    client_id: str, _admin: AdminPrincipal, session: DbSession, clients: OAuthClients
) -> ClientWithSecret:
    """Replace the client's secret; tokens it already holds stay valid until they expire."""
    client, secret = await clients.rotate_secret(session, client_id)
    return _with_secret(client, secret)


@router.post(
    "/{client_id}/disable",
    responses=problem_responses(*_AUTH_ERRORS, ClientNotFound, 422),
)
async def disable_client(
    client_id: str, _admin: AdminPrincipal, session: DbSession, clients: OAuthClients
) -> ClientRead:
    """Refuse the client from now on; every token issued to it stops working within a second."""
    return ClientRead.model_validate(await clients.disable(session, client_id))
