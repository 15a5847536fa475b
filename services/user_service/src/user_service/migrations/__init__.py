"""Alembic migrations of the user service's database."""
