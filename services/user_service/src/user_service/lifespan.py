"""Start-up of the identity parts: keys, hasher, token verification, denylist upkeep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy.exc import SQLAlchemyError

from servicekit.app import AppState
from servicekit.auth import Authenticator, SessionDenylist, StaticKeySource, TokenVerifier
from servicekit.observability.logging import get_logger
from servicekit.ratelimit.lockout import Lockout
from servicekit.redis import REDIS_ERRORS, KeySpace
from servicekit.redis.cache import Cache
from user_service.config import UserServiceSettings
from user_service.email import BackgroundEmailSender, build_email_sender
from user_service.keys import load_signing_key, published_jwks
from user_service.schemas.user import UserSnapshot
from user_service.security import PasswordHasher
from user_service.services.context import IdentityContext
from user_service.services.revocation import DenylistMaintainer, database_revocation_check
from user_service.services.user_cache import invalidate_user_writes
from user_service.tokens import TokenIssuer

log = get_logger(__name__)


class UserServiceState(AppState):
    """The chassis state plus what the identity endpoints read."""

    identity: IdentityContext
    jwks: dict[str, Any]


async def identity_startup(state: AppState) -> Callable[[], Awaitable[None]]:
    """Build the identity context and keep the revocation list complete while running."""
    settings = cast(UserServiceSettings, state["settings"])
    signing_key = load_signing_key(settings)
    jwks = published_jwks(settings, signing_key)
    hasher = PasswordHasher(settings.password)
    keys = KeySpace.of(settings)
    denylist = SessionDenylist(
        state["redis"],
        keys=keys,
        fallback=database_revocation_check(state["sessionmaker"]),
    )
    email_sender = BackgroundEmailSender(build_email_sender(settings))
    ctx = IdentityContext(
        settings=settings,
        hasher=hasher,
        issuer=TokenIssuer(settings.jwt, signing_key),
        denylist=denylist,
        user_cache=Cache(
            state["redis"],
            name="user",
            model=UserSnapshot,
            keys=keys,
            ttl_s=settings.cache.user_ttl_s,
            negative_ttl_s=settings.cache.negative_ttl_s,
            enabled=settings.cache.enabled,
            local_size=settings.cache.local_size,
            local_ttl_s=settings.cache.local_ttl_s,
        ),
        lockout=Lockout(
            state["redis"],
            # "Let authentication through without Redis" covers the lockout check too.
            settings.lockout.model_copy(
                update={
                    "fail_closed": settings.lockout.fail_closed
                    and not settings.rate_limit.auth_fail_open
                }
            ),
            keys=keys,
        ),
        limiter=state["rate_limiter"],
        email_sender=email_sender,
    )
    state["session_hooks"].append(invalidate_user_writes(ctx.user_cache))
    verifier = TokenVerifier(
        StaticKeySource(jwks),
        issuer=settings.jwt.issuer,
        audience=settings.jwt.audience,
        algorithms=sorted({key["alg"] for key in jwks["keys"]}),
    )
    user_state = cast(UserServiceState, state)
    user_state["auth"] = Authenticator(verifier, denylist)
    user_state["identity"] = ctx
    user_state["jwks"] = jwks

    maintainer = DenylistMaintainer(ctx, state["sessionmaker"])
    try:
        await maintainer.rebuild()
    except (*REDIS_ERRORS, SQLAlchemyError, OSError) as exc:  # start anyway; readiness reports it
        ctx.denylist_dirty = True
        log.warning("auth.denylist_rebuild_deferred", error=repr(exc))
    maintainer.start()
    await denylist.start()
    await ctx.user_cache.start()

    async def cleanup() -> None:
        await ctx.user_cache.stop()
        await denylist.stop()
        await maintainer.stop()
        await email_sender.aclose()
        hasher.close()

    return cleanup
