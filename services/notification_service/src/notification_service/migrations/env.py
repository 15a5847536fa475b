"""Alembic environment (async); the URL comes from the caller or the service settings."""

from notification_service.config import get_settings
from notification_service.models import Base
from servicekit.db.migrations import run_migrations

run_migrations(
    Base.metadata,
    default_url=lambda: get_settings().resolved_database_url(),
    version_table="notification_alembic_version",
)
