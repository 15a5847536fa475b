from __future__ import annotations

from collections.abc import Iterator

import pytest

from servicekit.db import AsyncSession
from servicekit.events import EventRecorder
from user_service.config import PasswordSettings, UserServiceSettings
from user_service.errors import EmailAlreadyRegistered, PasswordPolicyViolation
from user_service.models import Role, outbox
from user_service.repositories import UserRepository
from user_service.security import PasswordHasher
from user_service.services.audit import AuditTrail
from user_service.services.user import UserService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def users(settings: UserServiceSettings) -> Iterator[UserService]:
    hasher = PasswordHasher(PasswordSettings())
    yield UserService(hasher, EventRecorder.of(settings, outbox), AuditTrail(retention_days=30))
    hasher.close()


class TestCreateUser:
    async def test_email_is_normalised_and_password_hashed(
        self, db_session: AsyncSession, users: UserService
    ) -> None:
        user = await users.create(db_session, email="  Ada@Example.COM ", password="correct horse")
        assert user.email == "ada@example.com"
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert user.role is Role.USER
        assert user.version == 1
        assert user.created_at.tzinfo is not None

    async def test_duplicate_email_in_any_case_conflicts(
        self, db_session: AsyncSession, users: UserService
    ) -> None:
        await users.create(db_session, email="grace@example.com", password="long enough")
        with pytest.raises(EmailAlreadyRegistered):
            await users.create(db_session, email="GRACE@example.com", password="long enough")
        # The failed insert rolled back only its savepoint; the session is still usable.
        assert await UserRepository.from_session(db_session).get_by_email("grace@example.com")

    @pytest.mark.parametrize(
        ("email", "password"),
        [
            ("a@example.com", "short"),
            ("b@example.com", "x" * 129),
            ("c@example.com", "c@example.com"),
        ],
    )
    async def test_password_policy(
        self, db_session: AsyncSession, users: UserService, email: str, password: str
    ) -> None:
        with pytest.raises(PasswordPolicyViolation):
            await users.create(db_session, email=email, password=password)
