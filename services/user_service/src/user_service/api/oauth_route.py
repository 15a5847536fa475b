"""RFC 6749 §5.2 error answers for the OAuth endpoints (instead of problem+json).

Standard OAuth clients parse ``{"error": "invalid_grant", "error_description": …}`` with
status 400 (401 for ``invalid_client``); they cannot read problem documents. Routes of an
``OAuthRoute`` router translate the domain errors here, in one table, after the request's
transaction has ended (so a ``commit_changes`` error still commits). Errors that are not
the client's fault in OAuth's sense (429, 503) stay problem+json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from servicekit.errors import AppError
from user_service.errors import MfaRequired
from user_service.schemas.auth import OAuthError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from starlette.requests import Request
    from starlette.responses import Response

#: Domain error code → RFC 6749 §5.2 error code.
OAUTH_ERRORS: dict[str, str] = {
    "invalid_request": "invalid_request",
    "validation_error": "invalid_request",
    "unsupported_media_type": "invalid_request",
    "bad_request": "invalid_request",
    "invalid_client": "invalid_client",
    "invalid_grant": "invalid_grant",
    "invalid_credentials": "invalid_grant",
    "email_not_verified": "invalid_grant",
    "unauthorized_client": "unauthorized_client",
    "unsupported_grant_type": "unsupported_grant_type",
    "invalid_scope": "invalid_scope",
}
#: RFC 6749 §5.1: token responses (and their errors) must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(
    error: str, description: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An RFC 6749 §5.2 error: 401 for ``invalid_client``, 400 otherwise."""
    status = 401 if error == "invalid_client" else 400
    extra = {"WWW-Authenticate": 'Basic realm="oauth"'} if status == 401 else {}
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **extra, **(headers or {})},
    )


def mfa_required_response(exc: MfaRequired) -> JSONResponse:
    """The password grant's answer for an account with TOTP on: 403 and an ``mfa_token``.

    The shape of the other OAuth errors (``error``, ``error_description``) with the
    challenge beside it, as identity providers answer an MFA-protected password grant;
    the client completes it at ``/api/v1/auth/mfa/verify``.
    """
    return JSONResponse(
        {"error": exc.code, "error_description": exc.detail, **exc.extra},
        status_code=exc.status_code,
        headers=NO_STORE,
    )


class OAuthRoute(APIRoute):
    """A route answering errors in the RFC 6749 shape and never letting a token be cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: map errors, add ``no-store``."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except RequestValidationError as exc:
                return oauth_error_response("invalid_request", _describe(exc.errors()))
            except MfaRequired as exc:
                return mfa_required_response(exc)
            except AppError as exc:
                error = OAUTH_ERRORS.get(exc.code)
                if error is None:
                    raise
                headers = {k: v for k, v in exc.headers.items() if k != "WWW-Authenticate"}
                return oauth_error_response(error, exc.detail, headers)
            response.headers.update(NO_STORE)
            return response

        return route


def _describe(errors: Any) -> str:
    """Which parameters are wrong, without echoing their values."""
    names = sorted({str(err.get("loc", ("", "?"))[-1]) for err in errors})
    return f"Invalid or missing parameter: {', '.join(names)}."


def oauth_error_responses(*errors: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries of the RFC 6749 errors an OAuth endpoint answers."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(401 if error == "invalid_client" else 400, []).append(error)
    return {
        status: {"description": f"RFC 6749 §5.2 error ({', '.join(codes)})", "model": OAuthError}
        for status, codes in by_status.items()
    }
