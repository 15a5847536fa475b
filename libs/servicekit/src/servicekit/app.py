"""``create_app``: one call wires the whole chassis around a service's routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware

from servicekit import tracing
from servicekit.client_ip import parse_networks
from servicekit.db import SessionHook, create_engine, create_sessionmaker
from servicekit.embedded_redis import EmbeddedRedis
from servicekit.errors import install_error_handlers
from servicekit.health import Readiness, database_check, health_router, redis_check
from servicekit.logging import configure_logging, get_logger
from servicekit.metrics import metrics_router
from servicekit.middleware import (
    BodySizeLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    TrustedHostMiddleware,
)
from servicekit.problem import Problem
from servicekit.rate_limit import RateLimiter
from servicekit.redis import create_redis
from servicekit.settings import ServiceSettings

if TYPE_CHECKING:
    from servicekit.auth.authenticator import Authenticator

log = get_logger(__name__)


class AppState(TypedDict):
    """Lifespan state, available to dependencies as ``request.state.<key>``."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    readiness: Readiness
    rate_limiter: RateLimiter
    #: Hooks run on every request's database session (see ``servicekit.db.SessionHook``).
    session_hooks: list[SessionHook]
    #: Set by an auth start-up hook (``servicekit.auth.jwks_auth`` or the issuing service).
    auth: NotRequired[Authenticator]


#: A service hook run at start-up with the state (load keys, warm caches…); it may return
#: an async cleanup callable run at shutdown.
StartupHook = Callable[[AppState], Awaitable[Callable[[], Awaitable[None]] | None]]


def create_app(
    settings: ServiceSettings,
    routers: Sequence[APIRouter] = (),
    *,
    title: str | None = None,
    version: str = "0.1.0",
    description: str = "",
    on_startup: Sequence[StartupHook] = (),
    tracer_provider: Any = None,
) -> FastAPI:
    """Build a FastAPI app with logging, database, Redis, errors, middleware, health,
    metrics and (when enabled) tracing.

    ``tracer_provider`` overrides the OTLP provider built from settings (tests pass one with
    an in-memory exporter); tracing is on when it is given or ``settings.tracing.enabled``.
    """
    configure_logging(settings)
    if tracer_provider is None and settings.tracing.enabled:
        tracer_provider = tracing.create_tracer_provider(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            redis_url = settings.redis.url
            if not redis_url:
                # Single-process fallback; `serve` starts one server for all its workers.
                embedded = EmbeddedRedis(settings.data_dir)
                redis_url = embedded.start()
                stack.callback(embedded.stop)
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
            redis = create_redis(settings, redis_url)
            stack.push_async_callback(redis.aclose)
            readiness = Readiness(
                checks={"database": database_check(engine), "redis": redis_check(redis)}
            )
            if tracer_provider is not None:
                tracing.instrument_backends(engine, tracer_provider)
                stack.callback(tracing.shutdown, tracer_provider)
            state = AppState(
                settings=settings,
                engine=engine,
                sessionmaker=create_sessionmaker(engine),
                redis=redis,
                readiness=readiness,
                rate_limiter=RateLimiter(
                    redis,
                    settings.rate_limit.effective_rules(),
                    namespace=settings.service_name,
                    key_prefix=settings.redis.key_prefix,
                    enabled=settings.rate_limit.enabled,
                ),
                session_hooks=[],
            )
            for hook in on_startup:
                cleanup = await hook(state)
                if cleanup is not None:
                    stack.push_async_callback(cleanup)
            readiness.install_signal_hook()
            stack.callback(readiness.remove_signal_hook)
            log.info("app.started", environment=settings.environment.value)
            try:
                yield state
            finally:
                readiness.shutting_down = True
                log.info("app.stopping")

    app = FastAPI(
        title=title or settings.service_name,
        version=version,
        description=description,
        lifespan=lifespan,
        debug=False,  # tracebacks never reach clients, whatever settings.debug says
    )
    install_error_handlers(app)
    _install_openapi(app)
    # add_middleware prepends: the last added runs first (outermost).
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.http.max_body_bytes)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                "if-match",
                "idempotency-key",
                "x-request-id",
            ],
            expose_headers=[
                "x-request-id",
                "etag",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ],
            allow_credentials=True,
            max_age=600,
        )
    app.add_middleware(
        RateLimitMiddleware,
        trusted_proxies=parse_networks(settings.http.trusted_proxies),
        api_prefix=settings.rate_limit.api_prefix,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.http.trusted_hosts)
    app.add_middleware(RequestContextMiddleware, access_log=settings.logging.access_log)
    # Outermost, so even the last-resort 500 of RequestContextMiddleware carries them.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.http.hsts)
    if tracer_provider is not None:
        tracing.instrument_app(app, tracer_provider)

    app.include_router(health_router())
    app.include_router(metrics_router())
    for router in routers:
        app.include_router(router)
    return app


def _install_openapi(app: FastAPI) -> None:
    """Publish the shared ``Problem`` schema referenced by every documented error."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
