"""Where verification keys come from: in-process keys or a remote JWKS document."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError

from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

log = get_logger(__name__)


class KeySource(Protocol):
    """Finds the public key for a ``kid``."""

    async def get(self, kid: str) -> PyJWK | None:
        """The key with this id, or ``None``."""
        ...


class StaticKeySource:
    """Keys known in-process (the issuing service verifies with its own public keys)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = {key.key_id: key for key in PyJWKSet.from_dict(dict(jwks)).keys}

    async def get(self, kid: str) -> PyJWK | None:
        """The key with this id, or ``None``."""
        return self._keys.get(kid)


class RemoteJWKS:
    """A JWKS fetched over HTTP and cached.

    The set is refreshed after ``ttl_s``; an unknown ``kid`` (a key rotated in) triggers one
    early refetch at most every ``refetch_interval_s``, so garbage ``kid`` values cannot be
    used to hammer the issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        ttl_s: float = 300.0,
        refetch_interval_s: float = 30.0,
    ) -> None:
        # httpx is imported here, not with the module: the issuer, which verifies with its
        # own keys, would import it (~0.05-0.1 s) at every start-up for nothing.
        import httpx

        self.url = url
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._owns_client = client is None
        self.ttl_s = ttl_s
        self.refetch_interval_s = refetch_interval_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self.fetch_count = 0

    async def _fetch(self) -> None:
        import httpx  # already loaded by __init__

        self._fetched_at = time.monotonic()
        self.fetch_count += 1
        try:
            response = await self._client.get(self.url)
            response.raise_for_status()
            keys = PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, PyJWKSetError) as exc:
            log.warning("auth.jwks_fetch_failed", url=self.url, error=repr(exc))
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}

    async def get(self, kid: str) -> PyJWK | None:
        """The key with this id, refetching the set when stale or when ``kid`` is new."""
        age = time.monotonic() - self._fetched_at
        if age > self.ttl_s or (kid not in self._keys and age > self.refetch_interval_s):
            await self._fetch()
        return self._keys.get(kid)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()
