"""``/auth``: sign in, rotate refresh tokens, sign out."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from servicekit.auth import InsufficientUserAuthentication, InvalidToken, NotAuthenticated
from servicekit.deps import rate_limit
from servicekit.errors import AppError
from servicekit.http import problem_responses
from servicekit.ratelimit.limiter import RateLimited, RateLimitUnavailable
from user_service.deps import (
    Accounts,
    Auth,
    Client,
    CurrentPrincipal,
    CurrentUser,
    DbSession,
    RecentPrincipal,
    StepUp,
)
from user_service.errors import (
    EmailNotVerified,
    InvalidCredentials,
    InvalidGrant,
    InvalidMfaCode,
    InvalidMfaToken,
    MfaCodeRequired,
    MfaRequired,
    PasswordPolicyViolation,
    WrongPassword,
)
from user_service.schemas.auth import (
    LoginRequest,
    RefreshRequest,
    TokenResponse,
)
from user_service.schemas.mfa import MfaVerify, Reauthenticate
from user_service.schemas.user import PasswordChange
from user_service.services.signin import TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])

_FORM = "application/x-www-form-urlencoded"


class UnsupportedMediaType(AppError):
    """The body is neither JSON nor an HTML form."""

    status_code = 415
    code = "unsupported_media_type"
    message = "Send application/json or application/x-www-form-urlencoded."


async def read_login(request: Request) -> LoginRequest:
    """Accept the OAuth2 password form (``username``, ``password``) or a JSON body."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if media_type == "application/json":
        try:
            data = json.loads(await request.body())
        # The chassis refuses deep JSON, but not what only Python's json accepts (NaN).
        except (ValueError, RecursionError) as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "Invalid JSON", "type": "json_invalid"}]
            ) from exc
    elif media_type in {_FORM, "multipart/form-data"}:
        form = await request.form()
        data = {"email": form.get("username"), "password": form.get("password")}
    else:
        raise UnsupportedMediaType
    names = _FORM_NAMES if media_type != "application/json" else {}
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        errors = [  # named as the client sent them: the form's `username` is the email
            {**err, "loc": ("body", *(names.get(str(part), part) for part in err["loc"]))}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(errors) from exc


#: The OAuth2 password form's field for each ``LoginRequest`` field it names differently.
_FORM_NAMES = {"email": "username"}


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse.model_validate(pair, from_attributes=True)


def _login_body() -> dict[str, Any]:
    """Both bodies ``read_login`` accepts, with the same bounds as ``LoginRequest``."""
    schema = LoginRequest.model_json_schema()
    fields = schema["properties"]
    form = {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": {**fields["email"], "title": "Username", "description": "The email."},
            "password": {**fields["password"], "format": "password"},
        },
    }
    return {
        "required": True,
        "content": {_FORM: {"schema": form}, "application/json": {"schema": schema}},
    }


@router.post(
    "/login",
    openapi_extra={"requestBody": _login_body()},
    dependencies=[Depends(rate_limit("login_ip"))],
    responses=problem_responses(
        InvalidCredentials,
        MfaRequired,
        EmailNotVerified,
        UnsupportedMediaType,
        RateLimited,
        RateLimitUnavailable,
        422,
    ),
)
async def login(
    credentials: Annotated[LoginRequest, Depends(read_login)],
    session: DbSession,
    auth: Auth,
    client: Client,
) -> TokenResponse:
    """Sign in with email and password (OAuth2 password form or JSON).

    With TOTP on, the answer is 403 `mfa_required` with an `mfa_token` for `/auth/mfa/verify`.
    """
    pair = await auth.login(
        session, email=credentials.email, password=credentials.password, client=client
    )
    return _tokens(pair)


@router.post(
    "/mfa/verify",
    dependencies=[Depends(rate_limit("login_ip"))],
    responses=problem_responses(
        InvalidMfaToken, InvalidMfaCode, RateLimited, RateLimitUnavailable, 422
    ),
)
async def verify_mfa(
    body: MfaVerify, session: DbSession, step_up: StepUp, client: Client
) -> TokenResponse:
    """The second step of a sign-in: the `mfa_token` and a TOTP or recovery code."""
    pair = await step_up.verify_mfa(
        session, mfa_token=body.mfa_token, code=body.code, client=client
    )
    return _tokens(pair)


@router.post(
    "/reauthenticate",
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        WrongPassword,
        MfaCodeRequired,
        InvalidMfaCode,
        InvalidGrant,
        RateLimited,
        RateLimitUnavailable,
        422,
    ),
)
async def reauthenticate(
    body: Reauthenticate,
    user: CurrentUser,
    principal: CurrentPrincipal,
    session: DbSession,
    step_up: StepUp,
) -> TokenResponse:
    """Prove the user again (step-up, RFC 9470): a fresh access token for this session.

    Send the password, and a code when TOTP is on; retry the refused operation with the
    new access token. The refresh token stays as it was.
    """
    pair = await step_up.reauthenticate(
        session,
        user=user,
        session_id=principal.session_id,
        password=body.password,
        code=body.code,
    )
    return _tokens(pair)


@router.post(
    "/refresh", responses=problem_responses(InvalidGrant, RateLimited, RateLimitUnavailable, 422)
)
async def refresh(body: RefreshRequest, session: DbSession, auth: Auth) -> TokenResponse:
    """Exchange a refresh token for a new access token and a new refresh token."""
    return _tokens(await auth.refresh(session, refresh_token=body.refresh_token))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotAuthenticated, InvalidToken),
)
async def logout(principal: CurrentPrincipal, session: DbSession, auth: Auth) -> None:
    """Revoke the current session; its access and refresh tokens stop working at once."""
    await auth.logout(session, user_id=principal.user_id, session_id=principal.session_id)


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotAuthenticated, InvalidToken, InsufficientUserAuthentication),
)
async def logout_all(principal: RecentPrincipal, session: DbSession, auth: Auth) -> None:
    """Revoke every session of the signed-in user; needs a recent sign-in."""
    await auth.logout_all(session, user_id=principal.user_id)


@router.post(
    "/password/change",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        InsufficientUserAuthentication,
        WrongPassword,
        PasswordPolicyViolation,
        RateLimited,
        422,
    ),
)
async def change_password(
    body: PasswordChange,
    user: CurrentUser,
    principal: RecentPrincipal,
    session: DbSession,
    accounts: Accounts,
) -> None:
    """Change the password (needs a recent sign-in); every other session is signed out."""
    await accounts.change_password(
        session,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
        current_session_id=principal.session_id,
    )
