"""Queries on ``users``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import RowMapping, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from servicekit.db.repository import Repository
from user_service.errors import EmailAlreadyRegistered
from user_service.models import User

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncConnection

#: PostgreSQL's "lock not available", raised by ``NOWAIT`` when another transaction holds it.
_LOCK_NOT_AVAILABLE = "55P03"

_PUBLIC_COLUMNS = (
    User.id,
    User.email,
    User.full_name,
    User.role,
    User.is_active,
    User.is_verified,
    User.created_at,
    User.updated_at,
    User.version,
)


class UserRepository(Repository[User]):
    """Users by id and by normalised email."""

    model = User

    @staticmethod
    async def public_fields(connection: AsyncConnection, user_id: uuid.UUID) -> RowMapping | None:
        """The columns clients may see, and the version, of one user (``None`` if absent).

        A Core select on a bare connection, not an ORM load through a session: the cache
        fill on the uncached read path skips the session, identity map and instance state.
        """
        statement = select(*_PUBLIC_COLUMNS).where(User.id == user_id)
        return (await connection.execute(statement)).mappings().one_or_none()

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

    async def upgrade_password_hash(self, user_id: uuid.UUID, old: str, new: str) -> bool:
        """Replace ``old`` with ``new``, a fresh hash of the same password, if the row is free.

        Only if the row can be locked at once; ``False`` when it is busy (the next sign-in
        upgrades it instead).

        Sign-ins hold ``FOR SHARE`` on the row (see :meth:`get_by_email`); two of them each
        waiting to upgrade that lock would deadlock, hence ``NOWAIT`` in a savepoint. A
        statement, not an attribute change: ``version`` and ``updated_at`` stay as they
        are, since nothing a client can see changes.
        """
        try:
            async with self.session.begin_nested():
                lock = (
                    select(User.id)
                    .where(User.id == user_id, User.password_hash == old)
                    .with_for_update(nowait=True, key_share=True)
                )
                if await self.session.scalar(lock) is None:
                    return False  # changed meanwhile (a password reset, another upgrade)
                await self.session.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(password_hash=new, updated_at=User.updated_at)
                    .execution_options(synchronize_session=False)
                )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            return False
        return True

    async def flush_email_change(self, user: User) -> None:
        """Write ``user``'s new address; one another account has becomes a 409."""
        try:
            async with self.session.begin_nested():
                await self.session.flush([user])
        except IntegrityError as exc:
            raise EmailAlreadyRegistered from exc

    async def create(self, user: User) -> User:
        """Insert ``user``; a taken email becomes :class:`EmailAlreadyRegistered`."""
        try:
            async with self.session.begin_nested():
                return await self.add(user)
        except IntegrityError as exc:
            raise EmailAlreadyRegistered from exc
