"""The published OpenAPI document states the configured password policy.

New-password fields are validated by the service against ``password.min_length`` and
``max_length`` (settings, not code), so the schema bounds are filled in from the settings
when the document is first built: a client (or a fuzzer) that follows the schema is never
refused by the policy's length rule.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from user_service.api.oauth import router as oauth_router
from user_service.config import PasswordSettings
from user_service.schemas.fields import PASSWORD_POLICY_MARK

OAUTH_PREFIX = oauth_router.prefix + "/"


def document_password_policy(app: FastAPI, policy: PasswordSettings) -> None:
    """Wrap ``app.openapi`` so marked properties carry the policy's length bounds.

    It also drops FastAPI's 422 from the OAuth endpoints, which answer RFC 6749 errors.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            for component in schema.get("components", {}).get("schemas", {}).values():
                for prop in component.get("properties", {}).values():
                    if prop.pop(PASSWORD_POLICY_MARK, False):
                        prop["minLength"] = policy.min_length
                        prop["maxLength"] = policy.max_length
            for path, item in schema.get("paths", {}).items():
                if path.startswith(OAUTH_PREFIX):  # invalid parameters are 400 invalid_request
                    for operation in item.values():
                        operation.get("responses", {}).pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
