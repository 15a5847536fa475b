"""``user-service clients create | list | rotate-secret | disable``: the OAuth client registry.

The commands work on the configured database. ``disable`` also lists the client's tokens on
the Redis denylist (``REDIS_URL``, or the embedded server of a running ``serve`` in
``DATA_DIR``), so running instances refuse them within a second.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from servicekit.auth import SessionDenylist
from servicekit.db import create_engine, create_sessionmaker
from servicekit.db.session import commit
from servicekit.errors import AppError
from servicekit.events import EventRecorder
from servicekit.redis import KeySpace, create_redis
from user_service.models import outbox
from user_service.schemas.oauth_client import ClientCreate, ClientRead
from user_service.services.audit import AuditTrail
from user_service.services.oauth_clients import OAuthClientService
from user_service.services.revocation import SessionRevoker, denylist_ttl_s

if TYPE_CHECKING:
    import argparse
    import uuid
    from collections.abc import Awaitable, Callable, Sequence

    from servicekit.db import AsyncSession
    from servicekit.redis import AnyRedis
    from user_service.config import UserServiceSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``clients`` and its subcommands to the CLI."""
    clients = sub.add_parser("clients", help="manage OAuth clients (service credentials)")
    cmds = clients.add_subparsers(dest="clients_command", required=True)
    create = cmds.add_parser("create", help="register a client; prints its secret once (JSON)")
    create.add_argument("client_id")
    create.add_argument(
        "--grant", action="append", dest="grants", help="allowed grant (repeatable)"
    )
    create.add_argument("--scope", action="append", dest="scopes", help="allowed scope")
    create.add_argument("--audience", help="`aud` of its tokens (default: the service's)")
    create.add_argument(
        "--secret-stdin", action="store_true", help="import the secret from stdin instead"
    )
    cmds.add_parser("list", help="list the clients (JSON lines)")
    rotate = cmds.add_parser("rotate-secret", help="replace a client's secret; prints it once")
    rotate.add_argument("client_id")
    disable = cmds.add_parser("disable", help="disable a client and revoke its tokens")
    disable.add_argument("client_id")


def run(settings: UserServiceSettings, args: argparse.Namespace) -> int:
    """Run a ``clients`` subcommand; 1 (with the reason on stderr) when it is refused."""
    try:
        spec = _spec(args) if args.clients_command == "create" else None
        result = asyncio.run(_run(settings, lambda svc, session: _act(svc, session, args, spec)))
    except (AppError, ValidationError) as exc:
        reason = (
            f"{exc.code}: {exc.detail}"
            if isinstance(exc, AppError)
            else "invalid: " + "; ".join(_described(err) for err in exc.errors())
        )
        sys.stderr.write(f"clients {args.clients_command}: {reason}\n")
        return 1
    for line in result:
        sys.stdout.write(json.dumps(line, default=str) + "\n")
    return 0


def _described(error: Any) -> str:
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"


def _spec(args: argparse.Namespace) -> ClientCreate:
    fields: dict[str, Any] = {"client_id": args.client_id, "audience": args.audience}
    if args.grants:
        fields["grant_types"] = args.grants
    if args.scopes:
        fields["scopes"] = args.scopes
    if args.secret_stdin:
        fields["client_secret"] = sys.stdin.readline().rstrip("\n")
    return ClientCreate(**fields)


async def _act(
    svc: OAuthClientService,
    session: AsyncSession,
    args: argparse.Namespace,
    spec: ClientCreate | None,
) -> list[dict[str, Any]]:
    command = args.clients_command
    if command == "list":
        return [_shown(client) for client in await svc.list(session)]
    if command == "disable":
        return [_shown(await svc.disable(session, args.client_id))]
    if spec is not None:
        client, secret = await svc.create(session, spec=spec)
    else:
        client, secret = await svc.rotate_secret(session, args.client_id)
    return [{**_shown(client), "client_secret": secret}]


def _shown(client: object) -> dict[str, Any]:
    return ClientRead.model_validate(client).model_dump(mode="json", by_alias=True)


async def _run(
    settings: UserServiceSettings,
    action: Callable[[OAuthClientService, AsyncSession], Awaitable[list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    engine = create_engine(settings)
    redis = _redis(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await action(_service(settings, redis), session)
            await commit(session)  # then the after-commit denylist write
        return result
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


def _redis(settings: UserServiceSettings) -> AnyRedis | None:
    if settings.redis.url:
        return create_redis(settings)
    socket = (settings.data_dir / "redis.sock").resolve()
    return create_redis(settings, f"unix://{socket}") if socket.exists() else None


def _warn_unlisted(*_: object) -> None:
    sys.stderr.write(_UNLISTED)


def _service(settings: UserServiceSettings, redis: AnyRedis | None) -> OAuthClientService:
    revoke_tokens: Callable[[AsyncSession, Sequence[uuid.UUID]], None] = _warn_unlisted
    audit = AuditTrail(settings.audit.retention_days)
    if redis is not None:
        revoker = SessionRevoker(
            denylist=SessionDenylist(redis, keys=KeySpace.of(settings)),
            ttl_s=denylist_ttl_s(settings.jwt),
            on_write_failed=_warn_unlisted,
            events=EventRecorder.of(settings, outbox),
            audit=audit,
        )
        revoke_tokens = revoker.list_after_commit
    return OAuthClientService(
        revoke_tokens=revoke_tokens,
        default_audience=settings.jwt.audience,
        first_party_client_id=settings.oauth.first_party_client_id,
        audit=audit,
    )


_UNLISTED = (
    "warning: no Redis reachable to list the client on the denylist: its tokens stay valid "
    "until they expire (at most the access-token lifetime)\n"
)
