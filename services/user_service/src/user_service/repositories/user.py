"""Queries on ``users``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from servicekit.repository import Repository
from user_service.errors import EmailAlreadyRegistered
from user_service.models import User


class UserRepository(Repository[User]):
    """Users by id and by normalised email."""

    model = User

    async def get_by_email(self, email: str, *, share_lock: bool = False) -> User | None:
        """The user with this (already normalised) email, or ``None``.

        ``share_lock`` (``FOR SHARE`` on PostgreSQL) lets logins run side by side while an
        administrator's deactivation waits for them — and then revokes the sessions they
        opened — instead of a login slipping a session past a concurrent deactivation.
        """
        statement = self.select().where(User.email == email)
        if share_lock:
            statement = statement.with_for_update(read=True)
        return await self.get_one_or_none(statement)

    async def create(self, user: User) -> User:
        """Insert ``user``; a taken email becomes :class:`EmailAlreadyRegistered`."""
        try:
            async with self.session.begin_nested():
                return await self.add(user)
        except IntegrityError as exc:
            raise EmailAlreadyRegistered from exc
