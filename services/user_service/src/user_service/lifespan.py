"""Start-up of the identity parts: keys, hasher, token verification, services, denylist upkeep.

Each service is built here with only the collaborators it uses and registered in the app
state, where ``user_service.deps`` finds it by type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.exc import SQLAlchemyError

from servicekit.auth import Authenticator, SessionDenylist, StaticKeySource, TokenVerifier
from servicekit.events import EventRecorder, Sealer
from servicekit.observability.logging import get_logger
from servicekit.ratelimit import Lockout
from servicekit.redis import REDIS_ERRORS, Cache
from user_service.keys import PublishedJwks, load_signing_key, published_jwks
from user_service.schemas.user import UserSnapshot
from user_service.security import PasswordHasher
from user_service.services.account import AccountService
from user_service.services.account_recovery import AccountRecoveryService
from user_service.services.admin import AdminService
from user_service.services.audit import AuditTrail
from user_service.services.auth import AuthService
from user_service.services.credentials import TOTP_SEAL_PURPOSE, CredentialChecks
from user_service.services.email_change import EmailChangeService
from user_service.services.idempotency import idempotency
from user_service.services.mfa import MfaService, purge_expired_challenges
from user_service.services.oauth import OAuthService
from user_service.services.oauth_clients import OAuthClientService
from user_service.services.registration import RegistrationService
from user_service.services.revocation import (
    DenylistMaintainer,
    Purge,
    SessionRevoker,
    database_revocation_check,
    denylist_ttl_s,
)
from user_service.services.session import SessionService
from user_service.services.signin import SessionOpener
from user_service.services.step_up import StepUpService
from user_service.services.token_admin import TokenAdminService
from user_service.services.user import UserService
from user_service.services.user_cache import CachedUsers, UserCache, invalidate_user_writes
from user_service.tokens import TokenIssuer

if TYPE_CHECKING:
    from servicekit.state import AppState
    from user_service.config import UserServiceSettings

log = get_logger(__name__)
Cleanup = Callable[[], Awaitable[None]]


async def identity_startup(state: AppState) -> Cleanup:
    """Build the identity services and keep the revocation list complete while running."""
    settings = cast("UserServiceSettings", state.settings)
    signing_key = load_signing_key(settings)
    jwks = published_jwks(settings, signing_key)
    hasher = PasswordHasher(settings.password)
    denylist = SessionDenylist(
        state.redis, keys=state.keys, fallback=database_revocation_check(state.sessionmaker)
    )
    state.auth = Authenticator(_verifier(settings, jwks), denylist)
    user_cache = _user_cache(state, settings)
    state.session_hooks.append(invalidate_user_writes(user_cache))
    ttl_s = denylist_ttl_s(settings.jwt)
    maintainer = DenylistMaintainer(
        denylist, user_cache, state.sessionmaker, ttl_s=ttl_s, purges=_purges(settings)
    )
    events = state.get(EventRecorder)
    audit = AuditTrail(settings.audit.retention_days)
    state.provide(audit)
    revoker = SessionRevoker(
        denylist=denylist,
        ttl_s=ttl_s,
        on_write_failed=maintainer.mark_dirty,
        events=events,
        audit=audit,
    )
    state.provide(PublishedJwks(jwks))
    state.provide(CachedUsers(user_cache))
    _provide_services(
        state, settings, hasher, TokenIssuer(settings.jwt, signing_key), revoker, events
    )
    recovery = AccountRecoveryService(
        hasher=hasher,
        audit=audit,
        limiter=state.rate_limiter,
        revoker=revoker,
        settings=settings.email,
        events=events,
        sealer=state.get(Sealer),
        sessionmaker=state.sessionmaker if settings.hides_accounts else None,
    )
    state.provide(recovery)
    state.provide(
        RegistrationService(
            users=state.get(UserService),
            recovery=recovery,
            enumeration_safe=settings.hides_accounts,
        )
    )
    await _start(maintainer, denylist, user_cache)

    async def cleanup() -> None:
        await user_cache.stop()
        await denylist.stop()
        await maintainer.stop()
        await recovery.background.aclose()  # lookups queued after their responses
        hasher.close()

    return cleanup


def _verifier(settings: UserServiceSettings, jwks: dict[str, Any]) -> TokenVerifier:
    """Verification of this service's own tokens, against the keys it publishes."""
    return TokenVerifier(
        StaticKeySource(jwks),
        issuer=settings.jwt.issuer,
        audience=settings.jwt.audience,
        algorithms=sorted({key["alg"] for key in jwks["keys"]}),
    )


def _user_cache(state: AppState, settings: UserServiceSettings) -> UserCache:
    return Cache(
        state.redis,
        name="user",
        model=UserSnapshot,
        keys=state.keys,
        ttl_s=settings.cache.user_ttl_s,
        negative_ttl_s=settings.cache.negative_ttl_s,
        enabled=settings.cache.enabled,
        local_size=settings.cache.local_size,
        local_ttl_s=settings.cache.local_ttl_s,
    )


def _purges(settings: UserServiceSettings) -> list[Purge]:
    """What the maintainer deletes hourly: expired keys and challenges, old audit rows."""
    audit = AuditTrail(settings.audit.retention_days)
    return [idempotency.purge_expired, audit.purge, purge_expired_challenges]


def _provide_services(
    state: AppState,
    settings: UserServiceSettings,
    hasher: PasswordHasher,
    issuer: TokenIssuer,
    revoker: SessionRevoker,
    events: EventRecorder,
) -> None:
    audit = state.get(AuditTrail)
    first_party = settings.oauth.first_party_client_id
    # "Let authentication through without Redis" covers the lockout check too.
    lockout_settings = settings.lockout.model_copy(
        update={
            "fail_closed": settings.lockout.fail_closed and not settings.rate_limit.auth_fail_open
        }
    )
    lockout = Lockout(state.redis, lockout_settings, keys=state.keys)
    checks = CredentialChecks(
        hasher=hasher,
        lockout=lockout,
        audit=audit,
        sealer=Sealer(settings.totp_seal_keys, purpose=TOTP_SEAL_PURPOSE),
        secret_key=settings.secret_key.get_secret_value(),
        events=events,
    )
    opener = SessionOpener(
        issuer=issuer,
        jwt=settings.jwt,
        events=events,
        audit=audit,
        first_party_client_id=first_party,
    )
    state.provide(UserService(hasher, events, audit))
    auth = AuthService(
        hasher=hasher,
        sessions=opener,
        lockout=lockout,
        limiter=state.rate_limiter,
        revoker=revoker,
        jwt=settings.jwt,
        refresh_secret=settings.secret_key.get_secret_value(),
        first_party_client_id=first_party,
        audit=audit,
        mfa=settings.mfa,
        require_verified_email=settings.auth.require_verified_email,
    )
    state.provide(auth)
    state.provide(StepUpService(sessions=opener, checks=checks, lockout=lockout, audit=audit))
    state.provide(MfaService(checks=checks, settings=settings.mfa, events=events, audit=audit))
    state.provide(
        EmailChangeService(
            checks=checks,
            revoker=revoker,
            limiter=state.rate_limiter,
            events=events,
            sealer=state.get(Sealer),
            audit=audit,
            ttl_minutes=settings.email.email_change_ttl_minutes,
        )
    )
    clients = OAuthClientService(
        revoke_tokens=revoker.list_after_commit,
        default_audience=settings.jwt.audience,
        first_party_client_id=first_party,
        audit=audit,
    )
    state.provide(clients)
    state.provide(
        OAuthService(
            auth=auth,
            clients=clients,
            issuer=issuer,
            first_party_client_id=first_party,
            audit=audit,
        )
    )
    state.provide(AccountService(checks, hasher, revoker, events, audit))
    state.provide(SessionService(revoker))
    state.provide(AdminService(revoker, state.get(CachedUsers), events, audit))
    state.provide(
        TokenAdminService(
            revoker=revoker,
            authenticator=state.authenticator(),
            jwt=settings.jwt,
            clients=clients,
            first_party_client_id=first_party,
        )
    )


async def _start(
    maintainer: DenylistMaintainer, denylist: SessionDenylist, user_cache: UserCache
) -> None:
    try:
        await maintainer.rebuild()
    except (*REDIS_ERRORS, SQLAlchemyError, OSError) as exc:  # start anyway; readiness reports it
        maintainer.mark_dirty()
        log.warning("auth.denylist_rebuild_deferred", error=repr(exc))
    maintainer.start()
    await denylist.start()
    await user_cache.start()
