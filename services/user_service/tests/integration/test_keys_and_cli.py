"""Key generation and rotation; the create-admin command as a real process."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import AsyncSession
from servicekit.testing import app_client, override_db_session
from user_service.cli import main
from user_service.config import UserServiceSettings
from user_service.keys import generate_private_key, private_key_pem
from user_service.main import create_app
from user_service.models import Role, User

from ..utils.auth import bearer, login
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


def _public_pem(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class TestKeysGenerate:
    @pytest.mark.parametrize(
        ("algorithm", "kind"),
        [("EdDSA", ed25519.Ed25519PrivateKey), ("RS256", rsa.RSAPrivateKey)],
    )
    def test_writes_a_private_key_readable_only_by_its_owner(
        self, tmp_path: Path, algorithm: str, kind: type
    ) -> None:
        out = tmp_path / "key.pem"
        assert main(["keys", "generate", "--algorithm", algorithm, "--out", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert isinstance(serialization.load_pem_private_key(out.read_bytes(), None), kind)


@pytest.fixture
def key_pems() -> tuple[bytes, bytes]:
    return private_key_pem(generate_private_key("EdDSA")), private_key_pem(
        generate_private_key("EdDSA")
    )


async def _client_for(
    settings: UserServiceSettings, db_session: AsyncSession, private: bytes, previous: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    jwt = settings.jwt.model_copy(
        update={"private_key": SecretStr(private.decode()), "previous_public_keys": previous}
    )
    app = create_app(settings.model_copy(update={"jwt": jwt}))
    override_db_session(app, db_session)
    async with app_client(app) as client:
        yield client


class TestRotation:
    async def test_tokens_of_the_previous_key_verify_while_it_is_published(
        self,
        settings: UserServiceSettings,
        db_session: AsyncSession,
        key_pems: tuple[bytes, bytes],
    ) -> None:
        old, new = key_pems
        async for before in _client_for(settings, db_session, old, []):
            user = await register(before)
            tokens = await login(before, user["email"])
        async for after in _client_for(settings, db_session, new, [_public_pem(old)]):
            jwks = (await after.get("/.well-known/jwks.json")).json()
            assert len(jwks["keys"]) == 2
            assert (await after.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200
            fresh = await login(after, user["email"])
            assert (await after.get("/api/v1/users/me", headers=bearer(fresh))).status_code == 200
        async for retired in _client_for(settings, db_session, new, []):
            response = await retired.get("/api/v1/users/me", headers=bearer(tokens))
            assert response.status_code == 401


async def _create_admin(
    settings: UserServiceSettings, database_url: str, email: str, password: str
) -> tuple[int, str]:
    """Run ``user-service create-admin`` as a real process: its exit code and stderr."""
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(settings.data_dir)}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "user-service"),
        "create-admin",
        "--email",
        email,
        "--password-stdin",
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env=env,
    )
    _, stderr = await asyncio.wait_for(process.communicate(f"{password}\n".encode()), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


class TestCreateAdmin:
    async def test_creates_an_administrator_from_stdin(
        self, settings: UserServiceSettings, database_url: str, db_engine: AsyncEngine
    ) -> None:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        code, stderr = await _create_admin(settings, database_url, email, PASSWORD)
        assert code == 0, stderr
        async with db_engine.begin() as conn:
            row = (
                await conn.execute(select(User.role, User.is_verified).where(User.email == email))
            ).one()
            assert row.role == Role.ADMIN
            assert row.is_verified is True
            await conn.execute(delete(User).where(User.email == email))

    async def test_bad_input_is_one_line_and_exit_1_not_a_traceback(
        self, settings: UserServiceSettings, database_url: str, db_engine: AsyncEngine
    ) -> None:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        assert (await _create_admin(settings, database_url, email, PASSWORD))[0] == 0
        try:
            code, stderr = await _create_admin(settings, database_url, email, PASSWORD)
            assert code == 1
            assert "create-admin: email_already_registered:" in stderr
            assert "Traceback" not in stderr
            code, stderr = await _create_admin(settings, database_url, f"other-{email}", "short")
            assert code == 1
            assert "Traceback" not in stderr
            assert stderr.startswith("create-admin: ")
        finally:
            async with db_engine.begin() as conn:
                await conn.execute(delete(User).where(User.email.in_([email, f"other-{email}"])))


async def _clients(settings: UserServiceSettings, database_url: str, *args: str) -> tuple[int, str]:
    """Run ``user-service clients …`` as a real process: its exit code and stderr."""
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(settings.data_dir)}
    env.pop("REDIS_URL", None)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "user-service"), "clients", *args,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


class TestClientsCli:
    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            (("disable", "no-such-client"), "clients disable: client_not_found:"),
            (("rotate-secret", "no-such-client"), "clients rotate-secret: client_not_found:"),
            (("create", "Not A Valid Id"), "clients create: invalid: client_id: "),
            (("create", "svc-x", "--grant", "implicit"), "clients create: invalid: grant_types"),
        ],
    )
    async def test_refusals_are_one_line_and_exit_1(
        self, settings: UserServiceSettings, database_url: str, args: tuple[str, ...], reason: str
    ) -> None:
        code, stderr = await _clients(settings, database_url, *args)
        assert code == 1
        assert stderr.startswith(reason), stderr
        assert stderr.count("\n") == 1
        assert "Traceback" not in stderr
