"""Queries on ``users``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from servicekit.repository import Repository
from user_service.errors import EmailAlreadyRegistered
from user_service.models import User


class UserRepository(Repository[User]):
    """Users by id and by normalised email."""

    model = User

    async def get_by_email(self, email: str) -> User | None:
        """The user with this (already normalised) email, or ``None``."""
        return await self.get_one_or_none(self.select().where(User.email == email))

    async def create(self, user: User) -> User:
        """Insert ``user``; a taken email becomes :class:`EmailAlreadyRegistered`."""
        try:
            async with self.session.begin_nested():
                return await self.add(user)
        except IntegrityError as exc:
            raise EmailAlreadyRegistered from exc
