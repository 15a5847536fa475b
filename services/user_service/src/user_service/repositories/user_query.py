"""Admin queries on ``users``: filtered listings, paged by keyset on creation time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.db.pagination import Keyset, keyset_window
from servicekit.db.repository import Repository
from user_service.models import Role, User

if TYPE_CHECKING:
    from collections.abc import Sequence


class UserQueryRepository(Repository[User]):
    """Users filtered and listed by creation time for administrators."""

    model = User

    async def list_page(
        self,
        *,
        limit: int,
        descending: bool,
        after: Keyset | None = None,
        email_prefix: str | None = None,
        is_active: bool | None = None,
        is_verified: bool | None = None,
        role: Role | None = None,
    ) -> Sequence[User]:
        """Up to ``limit`` users after ``after`` in ``(created_at, id)`` order.

        ``email_prefix`` must already be normalised (emails are stored lower-cased); LIKE
        wildcards in it match literally.
        """
        statement = self.select()
        if email_prefix:
            statement = statement.where(User.email.startswith(email_prefix, autoescape=True))
        if is_active is not None:
            statement = statement.where(User.is_active == is_active)
        if is_verified is not None:
            statement = statement.where(User.is_verified == is_verified)
        if role is not None:
            statement = statement.where(User.role == role)
        return await self.list(
            keyset_window(
                statement, User.created_at, User.id, after=after, descending=descending, limit=limit
            )
        )
