"""User rules: creation with a normalised email and a hashed password."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from user_service.errors import PasswordPolicyViolation
from user_service.models import Role, User
from user_service.repositories import UserRepository
from user_service.security import create_password_hash, normalize_email

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


class UserService:
    """Creates and reads users; never commits (the request or the CLI does)."""

    async def create(
        self,
        session: AsyncSession,
        *,
        email: str,
        password: str,
        full_name: str = "",
        role: Role = Role.USER,
        is_verified: bool = False,
    ) -> User:
        """Create a user; raises ``EmailAlreadyRegistered`` or ``PasswordPolicyViolation``."""
        email = normalize_email(email)
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise PasswordPolicyViolation(
                f"The password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters."
            )
        if password.strip().lower() == email:
            raise PasswordPolicyViolation("The password must not be the email address.")
        # argon2 takes tens of milliseconds of CPU: never on the event loop.
        password_hash = await asyncio.to_thread(create_password_hash().hash, password)
        user = User(
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            role=role,
            is_verified=is_verified,
        )
        return await UserRepository.from_session(session).create(user)

    async def get_by_email(self, session: AsyncSession, email: str) -> User | None:
        """The user with this email (any case), or ``None``."""
        return await UserRepository.from_session(session).get_by_email(normalize_email(email))


users = UserService()
