"""Generic repository base: all SQL of a service lives in subclasses of :class:`Repository`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.exc import StaleDataError

from servicekit.errors import PreconditionFailed

ModelT = TypeVar("ModelT", bound=DeclarativeBase)


class Repository(Generic[ModelT]):
    """Data access for one model; holds the session, never commits (only flushes).

    Subclasses set ``model`` and add domain-named query methods that return ORM objects,
    ``None`` or ``(items, total)`` pages.
    """

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        """A repository bound to ``session``."""
        return cls(session)

    def select(self) -> Select[ModelT]:
        """A base ``SELECT`` of the model."""
        return select(self.model)

    async def get(self, ident: Any) -> ModelT | None:
        """The row with primary key ``ident``, or ``None``."""
        result: ModelT | None = await self.session.get(self.model, ident)
        return result

    async def get_one_or_none(self, statement: Select[ModelT]) -> ModelT | None:
        """The single row matched by ``statement``, or ``None``."""
        result = await self.session.execute(statement)
        return result.scalar_one_or_none()

    async def list(self, statement: Select[ModelT]) -> Sequence[ModelT]:
        """Every row matched by ``statement``."""
        result = await self.session.execute(statement)
        return result.scalars().all()

    async def paginate(
        self, statement: Select[ModelT], *, limit: int, offset: int
    ) -> tuple[Sequence[ModelT], int]:
        """One page of ``statement`` and the total row count."""
        count_stmt = select(func.count()).select_from(statement.order_by(None).subquery())
        total = (await self.session.execute(count_stmt)).scalar_one()
        items = await self.list(statement.limit(limit).offset(offset))
        return items, total

    async def flush(self) -> None:
        """Flush pending changes; a lost optimistic-concurrency race becomes a 412."""
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise PreconditionFailed from exc

    async def add(self, instance: ModelT, *, flush: bool = True) -> ModelT:
        """Add ``instance`` and (by default) flush so database errors surface here."""
        self.session.add(instance)
        if flush:
            await self.flush()
        return instance

    async def delete(self, instance: ModelT, *, flush: bool = True) -> None:
        """Delete ``instance``."""
        await self.session.delete(instance)
        if flush:
            await self.flush()
