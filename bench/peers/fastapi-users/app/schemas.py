"""The example's ``app/schemas.py``, unchanged."""

import uuid

from fastapi_users import schemas


class UserRead(schemas.BaseUser[uuid.UUID]):
    """A user as the API returns it."""


class UserCreate(schemas.BaseUserCreate):
    """A registration."""


class UserUpdate(schemas.BaseUserUpdate):
    """A profile update."""
