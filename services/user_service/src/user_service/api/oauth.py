"""``/oauth``: token (RFC 6749), revocation (RFC 7009) and introspection (RFC 7662).

Errors follow RFC 6749 §5.2 (see :mod:`user_service.api.oauth_route`). The JSON endpoints
under ``/api/v1/auth`` call the same service methods for first-party apps.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status

from servicekit.deps import check_rate_limits, client_address
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.api.oauth_route import OAuthRoute, oauth_error_responses
from user_service.deps import BasicClient, Client, DbSession, OAuth, TokenAdmin
from user_service.schemas.auth import (
    IntrospectionResponse,
    TokenForm,
    TokenRequest,
    TokenResponse,
)
from user_service.services.oauth import presented_client

router = APIRouter(prefix="/oauth", tags=["oauth"], route_class=OAuthRoute)

_TOKEN_ERRORS = (
    "invalid_request",
    "invalid_grant",
    "unsupported_grant_type",
    "unauthorized_client",
    "invalid_scope",
    "invalid_client",
)


#: Client authentication is optional where first-party apps, a public client, call too.
_OPTIONAL_CLIENT_AUTH: dict[str, Any] = {"security": [{}]}


@router.post(
    "/token",
    response_model_exclude_none=True,
    openapi_extra=_OPTIONAL_CLIENT_AUTH,
    responses={
        **oauth_error_responses(*_TOKEN_ERRORS),
        **problem_responses(RateLimited, RateLimitUnavailable),
    },
)
async def token(
    form: Annotated[TokenRequest, Form()],
    basic: BasicClient,
    request: Request,
    session: DbSession,
    oauth: OAuth,
    client: Client,
) -> TokenResponse:
    """Issue tokens: grants `password`, `refresh_token` and `client_credentials` (RFC 6749)."""
    if form.grant_type == "password":
        await check_rate_limits(request, [("login_ip", client_address(request))])
    credentials = presented_client(basic, form.client_id, form.client_secret)
    pair = await oauth.token(session, request=form, credentials=credentials, client=client)
    return TokenResponse.model_validate(pair, from_attributes=True)


@router.post(
    "/revoke",
    response_class=Response,  # RFC 7009: 200 with no body
    openapi_extra=_OPTIONAL_CLIENT_AUTH,
    responses={
        200: {"description": "Revoked, or the token was not valid anyway."},
        **oauth_error_responses("invalid_request", "invalid_client", "unauthorized_client"),
    },
)
async def revoke(
    form: Annotated[TokenForm, Form()],
    basic: BasicClient,
    session: DbSession,
    token_admin: TokenAdmin,
) -> Response:
    """Revoke a refresh or access token (RFC 7009); the answer is 200 whatever the token."""
    caller = presented_client(basic, form.client_id, form.client_secret)
    await token_admin.revoke(session, caller=caller, token=form.token, hint=form.token_type_hint)
    return Response(status_code=status.HTTP_200_OK)


@router.post(
    "/introspect",
    response_model_exclude_none=True,
    responses=oauth_error_responses("invalid_request", "invalid_client"),
)
async def introspect(
    form: Annotated[TokenForm, Form()],
    basic: BasicClient,
    session: DbSession,
    token_admin: TokenAdmin,
) -> IntrospectionResponse:
    """Whether a token is active and what it grants (RFC 7662); for registered clients."""
    caller = presented_client(basic, form.client_id, form.client_secret)
    result = await token_admin.introspect(
        session, caller=caller, token=form.token, hint=form.token_type_hint
    )
    return IntrospectionResponse.model_validate(result)
