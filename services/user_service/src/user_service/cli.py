"""``user-service serve | relay | migrate | create-admin | keys generate | clients …``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from servicekit.db import create_engine, create_sessionmaker
from servicekit.errors import AppError
from servicekit.events import EventRecorder, run_relay
from servicekit.observability.logging import configure_logging, get_logger
from servicekit.server.commands import ServiceCommands, add_service_commands
from user_service import cli_clients
from user_service.config import UserServiceSettings, get_settings
from user_service.keys import Algorithm, generate_private_key, private_key_pem
from user_service.models import Role, outbox
from user_service.security import PasswordHasher
from user_service.services.audit import AuditTrail
from user_service.services.user import UserService

if TYPE_CHECKING:
    from collections.abc import Sequence

MIGRATIONS = Path(__file__).parent / "migrations"
COMMANDS = ServiceCommands("user_service.main:create_app", MIGRATIONS, get_settings.cache_clear)

log = get_logger("user_service.cli")


async def _create_admin(settings: UserServiceSettings, email: str, password: str) -> None:
    engine = create_engine(settings)
    hasher = PasswordHasher(settings.password)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            users = UserService(
                hasher,
                EventRecorder.of(settings, outbox),
                AuditTrail(settings.audit.retention_days),
            )
            user = await users.create(
                session, email=email, password=password, role=Role.ADMIN, is_verified=True
            )
        log.info("admin.created", user_id=str(user.id), email=user.email)
    finally:
        hasher.close()
        await engine.dispose()


def create_admin(settings: UserServiceSettings, email: str, password_stdin: bool) -> int:
    """Create an administrator; the password comes from stdin or an interactive prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    try:
        asyncio.run(_create_admin(settings, email, password))
    except AppError as exc:  # an address already registered, a password the policy refuses
        sys.stderr.write(f"create-admin: {exc.code}: {exc.detail}\n")
        return 1
    return 0


def generate_key(algorithm: Algorithm, out: Path | None) -> int:
    """Print (or write, mode 0600) a new signing key for ``USER_SERVICE_JWT__PRIVATE_KEY``."""
    pem = private_key_pem(generate_private_key(algorithm))
    if out is None:
        sys.stdout.write(pem.decode())
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="user-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_service_commands(sub)
    sub.add_parser("relay", help="publish the outbox's events to Redis (REDIS_URL) until stopped")
    adm = sub.add_parser("create-admin", help="create an administrator account")
    adm.add_argument("--email", required=True)
    adm.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    keys = sub.add_parser("keys", help="manage JWT signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="print a new private key (PEM)")
    gen.add_argument("--algorithm", choices=["EdDSA", "RS256"], default="EdDSA")
    gen.add_argument("--out", type=Path, help="write to this new file (0600) instead of stdout")
    cli_clients.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``user-service``."""
    args = build_parser().parse_args(argv)
    if args.command == "keys":
        return generate_key(args.algorithm, args.out)
    settings = get_settings()
    configure_logging(settings)
    status = COMMANDS.run(args, settings)
    if status is not None:
        return status
    if args.command == "relay":
        asyncio.run(run_relay(settings, outbox))
        return 0
    if args.command == "clients":
        return cli_clients.run(settings, args)
    return create_admin(settings, args.email, args.password_stdin)


if __name__ == "__main__":
    sys.exit(main())
