"""Alembic environment (async); the URL comes from the caller or the service settings."""

from servicekit.db.migrations import run_migrations
from user_service.config import get_settings
from user_service.models import Base

run_migrations(Base.metadata, default_url=lambda: get_settings().resolved_database_url())
