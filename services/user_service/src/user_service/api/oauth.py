"""``/oauth``: the RFC 6749 token endpoint, for standard OAuth 2 clients.

Errors follow RFC 6749 §5.2 (see :mod:`user_service.api.oauth_route`). The JSON endpoints
under ``/api/v1/auth`` call the same service methods for first-party apps.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from servicekit.deps import check_rate_limits, client_address
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.api.oauth_route import OAuthRoute, oauth_error_responses
from user_service.deps import BasicClient, Client, DbSession, OAuth
from user_service.schemas.auth import TokenRequest, TokenResponse
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


@router.post(
    "/token",
    response_model_exclude_none=True,
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
