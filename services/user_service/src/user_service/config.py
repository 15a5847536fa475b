"""User service settings: the chassis settings plus the service's own groups."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class UserServiceSettings(ServiceSettings):
    """Environment variables use the ``USER_SERVICE_`` prefix and ``__`` for groups,
    e.g. ``USER_SERVICE_DATABASE__POOL_SIZE=20``; ``DATABASE_URL``, ``REDIS_URL``, ``HOST``,
    ``PORT``, ``WORKERS`` and ``DATA_DIR`` are read without the prefix."""

    model_config = SettingsConfigDict(env_prefix="USER_SERVICE_")

    service_name: str = "user_service"


@lru_cache
def get_settings() -> UserServiceSettings:
    """The process settings, read once from the environment (``cache_clear()`` in tests)."""
    return UserServiceSettings()
