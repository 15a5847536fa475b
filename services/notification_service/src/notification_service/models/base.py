"""Declarative base of the notification service."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from servicekit.db.orm import make_metadata


class Base(DeclarativeBase):
    """Every table of the service shares this metadata (and its naming convention)."""

    metadata = make_metadata()
