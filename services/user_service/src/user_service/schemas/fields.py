"""Field types shared by the request models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from user_service.addresses import InvalidEmailAddress, canonical_email

#: Marks a property whose length the password policy decides; the OpenAPI document gets the
#: configured bounds (see ``user_service.api.openapi``).
PASSWORD_POLICY_MARK = "x-password-policy"  # noqa: S105 - a schema key, not a password


def _email_address(value: str) -> str:
    """The canonical form (``user_service.addresses``); RFC 2606 ``.test`` domains pass.

    They are accepted like ``example.com``: reserved for testing, harmless, and what fuzzers
    and test suites use.
    """
    try:
        return canonical_email(value)
    except InvalidEmailAddress as exc:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}",
            {"reason": str(exc.args[0])},
        ) from exc  # fmt: skip


#: An email address (``format: email``) in its canonical form.
EmailAddress = Annotated[
    str, AfterValidator(_email_address), Field(json_schema_extra={"format": "email"})
]

#: A new password: the policy (length, not the email) is checked by the service, and the
#: published schema carries the configured length bounds.
NewPassword = Annotated[
    str,
    Field(min_length=1, max_length=1024, json_schema_extra={PASSWORD_POLICY_MARK: True}),
]

#: Text the database stores or compares: PostgreSQL holds no NUL character, so the schema
#: excludes it and a client learns which field held one (422), instead of the statement
#: failing later (``servicekit.errors.UnstorableText`` is the backstop for any other field).
StoredText = Annotated[str, Field(pattern=r"^[^\x00]*$")]
