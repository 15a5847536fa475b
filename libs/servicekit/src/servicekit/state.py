"""The application's state: built once by the lifespan, read through one typed accessor.

The lifespan yields ``{"servicekit": AppState(...)}``; Starlette hands that mapping to every
request (``request.scope["state"]``). :func:`app_state` is the only place that knows the
key, so dependencies read typed attributes instead of ``request.state.<name>`` strings. A
service adds its own start-up products as typed components (:meth:`AppState.provide`) and
reads them back by type (:meth:`AppState.get`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
    from starlette.requests import HTTPConnection
    from starlette.types import Scope

    from servicekit.auth.authenticator import Authenticator
    from servicekit.db.session import AsyncSession, SessionHook
    from servicekit.http.health import Readiness
    from servicekit.ratelimit.limiter import RateLimiter
    from servicekit.redis.client import AnyRedis
    from servicekit.redis.keys import KeySpace
    from servicekit.settings import ServiceSettings

T = TypeVar("T")
_KEY = "servicekit"


@dataclass(eq=False, slots=True)
class AppState:
    """What the lifespan builds; one instance per process, shared by every request."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: AnyRedis
    keys: KeySpace
    readiness: Readiness
    rate_limiter: RateLimiter
    #: Run on every request's database session (see ``servicekit.db.SessionHook``).
    session_hooks: list[SessionHook] = field(default_factory=list)
    #: Set by an auth start-up hook (``servicekit.auth.jwks_auth`` or the issuing service).
    auth: Authenticator | None = None
    #: The OpenTelemetry tracer provider when tracing is on (event consumers continue traces).
    tracer_provider: Any = None
    _components: dict[type[Any], Any] = field(default_factory=dict)

    def provide(self, component: object) -> None:
        """Register a service's start-up product, found again by its type."""
        self._components[type(component)] = component

    def get(self, kind: type[T]) -> T:
        """The component of type ``kind``; a missing one is a wiring bug, raised as such."""
        try:
            component: T = self._components[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} was provided at start-up") from None
        return component

    def authenticator(self) -> Authenticator:
        """The token authenticator; an app without an auth start-up hook has none."""
        if self.auth is None:
            raise LookupError("no authenticator: add an auth start-up hook to create_app")
        return self.auth

    def as_lifespan_state(self) -> dict[str, AppState]:
        """The mapping the lifespan yields (Starlette copies it into every request)."""
        return {_KEY: self}


def app_state(connection: HTTPConnection) -> AppState:
    """The application state of the request's app."""
    state: AppState = connection.scope["state"][_KEY]
    return state


def scope_app_state(scope: Scope) -> AppState | None:
    """The application state from an ASGI scope, or ``None`` before the lifespan ran."""
    state: AppState | None = scope.get("state", {}).get(_KEY)
    return state
