"""Start-up hook wiring token verification into a resource service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.auth.authenticator import Authenticator
from servicekit.auth.denylist import SessionDenylist
from servicekit.auth.keys import RemoteJWKS
from servicekit.auth.verifier import SUPPORTED_ALGORITHMS, TokenVerifier
from servicekit.redis.keys import KeySpace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import httpx

    from servicekit.state import AppState


def jwks_auth(
    jwks_url: str,
    *,
    issuer: str,
    audience: str,
    algorithms: Sequence[str] = SUPPORTED_ALGORITHMS,
    issuer_namespace: str = "user_service",
    jwks_ttl_s: float = 300.0,
    http_client: httpx.AsyncClient | None = None,
) -> Callable[[AppState], Awaitable[Callable[[], Awaitable[None]] | None]]:
    """A ``create_app(on_startup=[...])`` hook: verify tokens against a remote JWKS and denylist.

    The denylist is the issuer's, read from this service's Redis (which must be the issuer's
    Redis).

    Without a fallback to the issuer's database, an unreachable Redis or an incomplete
    denylist makes authentication fail closed (503) rather than accept revoked tokens.
    """

    async def hook(state: AppState) -> Callable[[], Awaitable[None]]:
        keys = RemoteJWKS(jwks_url, ttl_s=jwks_ttl_s, client=http_client)
        denylist = SessionDenylist(state.redis, keys=KeySpace.of(state.settings, issuer_namespace))
        verifier = TokenVerifier(keys, issuer=issuer, audience=audience, algorithms=algorithms)
        state.auth = Authenticator(verifier, denylist)
        await denylist.start()

        async def cleanup() -> None:
            await denylist.stop()
            await keys.aclose()

        return cleanup

    return hook
