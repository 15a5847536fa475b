"""Create the example's table and insert the bench's users, all sharing one password hash.

The same users as the service's seed (``bench-00000@example.com`` ... and one password),
verified and active. The hash is fastapi-users' own (``PasswordHelper``, pwdlib's
recommended argon2id), computed once: hashing 10,000 passwords would take minutes.

    PEER_DATABASE_URL=... PEER_SECRET=... PEER_PASSWORD=... .venv/bin/python seed.py 10000
"""

import asyncio
import os
import sys
import uuid

from fastapi_users.password import PasswordHelper
from sqlalchemy import insert

from app.db import User, async_session_maker, create_db_and_tables, engine


async def seed(count: int, password: str) -> None:
    """Insert ``count`` users in batches of 1,000."""
    await create_db_and_tables()
    hashed = PasswordHelper().hash(password)
    rows = [
        {
            "id": uuid.uuid4(),
            "email": f"bench-{i:05d}@example.com",
            "hashed_password": hashed,
            "is_active": True,
            "is_superuser": False,
            "is_verified": True,
        }
        for i in range(count)
    ]
    async with async_session_maker() as session, session.begin():
        for start in range(0, count, 1000):
            await session.execute(insert(User), rows[start : start + 1000])
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(seed(int(sys.argv[1]), os.environ["PEER_PASSWORD"]))
