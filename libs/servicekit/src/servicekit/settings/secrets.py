"""Secrets in settings: the development placeholder, third-party secrets, the strength check."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

#: Placeholder secret used in development; refused when ``environment=production``.
DEV_SECRET_PLACEHOLDER = "dev-insecure-change-me"  # noqa: S105 - refused in production
#: Shortest secret accepted in production.
MIN_SECRET_LENGTH = 32


class ExternalSecret:
    """Marks a secret issued by a third party (an SMTP password, an API key).

    Its length is not ours to choose, so the production strength check skips it.

    Use as ``password: Annotated[SecretStr | None, EXTERNAL_SECRET] = None``.
    """


EXTERNAL_SECRET = ExternalSecret()


def is_weak_secret(value: SecretStr | str | None) -> bool:
    """True for a missing, placeholder or short secret."""
    if value is None:
        return True
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw == DEV_SECRET_PLACEHOLDER or len(raw) < MIN_SECRET_LENGTH


def iter_secrets(model: BaseModel, prefix: str = "") -> list[tuple[str, SecretStr]]:
    """Every ``SecretStr`` field of ``model`` and its nested groups, as ``(dotted_name, value)``."""
    found: list[tuple[str, SecretStr]] = []
    for name, field in type(model).model_fields.items():
        if any(isinstance(meta, ExternalSecret) for meta in field.metadata):
            continue
        value = getattr(model, name)
        dotted = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            found.extend(iter_secrets(value, f"{dotted}."))
        elif isinstance(value, SecretStr):
            found.append((dotted, value))  # optional secrets left unset are not checked here
        elif isinstance(value, dict):
            found.extend(
                (f"{dotted}.{key}", item)
                for key, item in value.items()
                if isinstance(item, SecretStr)
            )
        elif isinstance(value, list):
            found.extend(
                (f"{dotted}.{index}", item)
                for index, item in enumerate(value)
                if isinstance(item, SecretStr)
            )
    return found
