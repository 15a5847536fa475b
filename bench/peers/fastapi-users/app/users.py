"""The example's ``app/users.py``: the user manager and the authentication backend.

Changed from the example: the secret comes from ``PEER_SECRET``, and ``PEER_STRATEGY``
chooses the backend: ``jwt`` is the example's ``BearerTransport`` + ``JWTStrategy``;
``redis`` is the same transport with the ``RedisStrategy`` configured as fastapi-users'
documentation shows it (``docs/configuration/authentication/strategies/redis.md``), on
``PEER_REDIS_URL``. One backend per process, so each strategy is measured on its own.
"""

import os
import uuid

import redis.asyncio
from fastapi import Depends, Request
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, models
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    JWTStrategy,
    RedisStrategy,
)
from fastapi_users.db import SQLAlchemyUserDatabase

from app.db import User, get_user_db

SECRET = os.environ["PEER_SECRET"]
STRATEGY = os.environ.get("PEER_STRATEGY", "jwt")


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    """The example's user manager: hooks that print."""

    reset_password_token_secret = SECRET
    verification_token_secret = SECRET

    async def on_after_register(self, user: User, request: Request | None = None):
        """Print the new user's id."""
        print(f"User {user.id} has registered.")

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ):
        """Print the reset token (the example's stand-in for a mail)."""
        print(f"User {user.id} has forgot their password. Reset token: {token}")

    async def on_after_request_verify(self, user: User, token: str, request: Request | None = None):
        """Print the verification token."""
        print(f"Verification requested for user {user.id}. Verification token: {token}")


async def get_user_manager(user_db: SQLAlchemyUserDatabase = Depends(get_user_db)):
    """The user manager on the request's user database."""
    yield UserManager(user_db)


bearer_transport = BearerTransport(tokenUrl=f"auth/{STRATEGY}/login")

redis = redis.asyncio.from_url(os.environ.get("PEER_REDIS_URL", ""), decode_responses=True)


def get_jwt_strategy() -> JWTStrategy[models.UP, models.ID]:
    """Stateless tokens: HS256 JWTs valid for an hour."""
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)


def get_redis_strategy() -> RedisStrategy:
    """Opaque tokens kept in Redis for an hour; logout deletes them."""
    return RedisStrategy(redis, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name=STRATEGY,
    transport=bearer_transport,
    get_strategy=get_redis_strategy if STRATEGY == "redis" else get_jwt_strategy,
)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])

current_active_user = fastapi_users.current_user(active=True)
