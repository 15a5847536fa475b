"""Client-credentials access tokens (RFC 6749 §4.4), cached until shortly before expiry."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

import httpx

from servicekit.client.errors import CredentialsRejected, UpstreamUnavailable
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from pydantic import SecretStr

log = get_logger(__name__)


class ClientCredentials:
    """Fetches this service's own access token and reuses it until shortly before it expires.

    Concurrent callers that find no valid token wait for one fetch instead of each sending
    their own (one refresh at a time per process; each process holds its own token).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        refresh_margin_s: float = 30.0,
    ) -> None:
        self._http = http
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.refresh_margin_s = refresh_margin_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        #: Tokens fetched so far (tests and metrics read it).
        self.fetches = 0

    async def token(self) -> str:
        """A valid access token, fetched only when the cached one is about to expire."""
        if self._valid():
            return self._token or ""
        async with self._lock:
            if not self._valid():  # another caller may have refreshed while we waited
                await self._fetch()
            return self._token or ""

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (an upstream refused it) so the next call fetches a new one."""
        if self._token == token:
            self._token, self._expires_at = None, 0.0

    def _valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    async def _fetch(self) -> None:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        # RFC 6749 §2.3.1: id and secret are form-encoded before HTTP Basic joins them.
        auth = (quote_plus(self.client_id), quote_plus(self._secret.get_secret_value()))
        started = time.monotonic()
        try:
            response = await self._http.post(self.token_url, data=data, auth=auth)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(self.token_url, "The token endpoint is unreachable.") from exc
        if response.status_code in {400, 401}:
            error = _oauth_error(response)
            log.warning("client.token_refused", client_id=self.client_id, error=error)
            raise CredentialsRejected(self.token_url, error)
        if response.status_code != 200:
            raise UpstreamUnavailable(
                self.token_url, f"The token endpoint answered {response.status_code}."
            )
        body = response.json()
        lifetime = float(body.get("expires_in", 60))
        # Renew before expiry: a token must not die in flight or on a clock-skewed upstream.
        margin = min(self.refresh_margin_s, lifetime / 2)
        self._token = str(body["access_token"])
        self._expires_at = started + lifetime - margin
        self.fetches += 1
        log.info("client.token_fetched", client_id=self.client_id, expires_in=lifetime)


def _oauth_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", f"http_{response.status_code}"))
    except ValueError:
        return f"http_{response.status_code}"
