"""Every dependency of the API as an ``Annotated`` alias; endpoints declare only these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from servicekit.deps import DbSession, RedisClient, get_app_settings
from user_service.config import UserServiceSettings


def get_settings_dep(settings: Annotated[object, Depends(get_app_settings)]) -> UserServiceSettings:
    """The settings the app was built with, typed for this service."""
    assert isinstance(settings, UserServiceSettings)  # noqa: S101 - create_app guarantees it
    return settings


Settings = Annotated[UserServiceSettings, Depends(get_settings_dep)]

__all__ = ["DbSession", "RedisClient", "Settings"]
