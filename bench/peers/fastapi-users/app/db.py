"""The example's ``app/db.py``: the user table, the engine and the session dependency.

Changed from the example: the database URL comes from ``PEER_DATABASE_URL`` (the bench's
PostgreSQL, through asyncpg) instead of a SQLite file. Pool and session as published.
"""

import os
from collections.abc import AsyncGenerator

from fastapi import Depends
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ["PEER_DATABASE_URL"]


class Base(DeclarativeBase):
    """The declarative base."""


class User(SQLAlchemyBaseUserTableUUID, Base):
    """fastapi-users' own user table (``user``): id, email, hashed_password and three flags."""


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def create_db_and_tables():
    """Create the table when missing (the example's stand-in for migrations)."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    """One session per request."""
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)):
    """The user database adapter on the request's session."""
    yield SQLAlchemyUserDatabase(session, User)
