"""Generic repository bases: all SQL of a service lives in their subclasses.

A :class:`ReadRepository` takes any session, a read-only one included; a :class:`Repository`
also writes, so mypy accepts only a writing :class:`~servicekit.db.session.AsyncSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.exc import StaleDataError

from servicekit.errors import PreconditionFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servicekit.db.session import AsyncReadSession, AsyncSession

ModelT = TypeVar("ModelT", bound=DeclarativeBase)


class _Queries(Generic[ModelT]):
    """The reads every repository has."""

    model: ClassVar[type[Any]]
    session: AsyncReadSession

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


class ReadRepository(_Queries[ModelT]):
    """Reads of one model, on any session.

    Subclasses set ``model`` and add domain-named query methods that return ORM objects,
    ``None`` or sequences.
    """

    def __init__(self, session: AsyncReadSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncReadSession) -> Self:
        """A repository bound to ``session``."""
        return cls(session)


class Repository(_Queries[ModelT]):
    """Reads and writes of one model; holds a writing session, never commits (only flushes)."""

    session: AsyncSession

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        """A repository bound to ``session``."""
        return cls(session)

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
