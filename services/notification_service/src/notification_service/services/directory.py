"""The user service as this service's source of a recipient's current address and name.

The courier asks it when it sends, with a token of this service's own OAuth client
(``client_credentials``, scope ``users:read``): an address changed since the last event is
used at once. If the user service cannot be reached, or its circuit is open, the address
the events announced last is used instead, so an outage there never holds mail back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from servicekit.client import ClientCredentials, ServiceClient, UpstreamError
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    import uuid

    from notification_service.config import UsersSettings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Contact:
    """Where to reach a user now."""

    email: str
    full_name: str


class UserDirectory:
    """Reads users from the user service (``GET /api/v1/users/{id}``)."""

    def __init__(self, users: ServiceClient, http: httpx.AsyncClient) -> None:
        self.users = users
        self._http = http

    @classmethod
    def of(cls, settings: UsersSettings) -> UserDirectory | None:
        """The directory of ``settings``; ``None`` when no client credentials are set."""
        if not settings.client_id or settings.client_secret is None:
            return None
        base = settings.url.rstrip("/")
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        credentials = ClientCredentials(
            http,
            token_url=f"{base}/oauth/token",
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scope="users:read",
        )
        return cls(ServiceClient("user_service", base, credentials=credentials), http)

    async def contact(self, user_id: uuid.UUID) -> Contact | None:
        """The user's address and name now; ``None`` when the user service cannot say."""
        try:
            user = await self.users.get_json(f"/api/v1/users/{user_id}")
        except UpstreamError as exc:
            log.warning("directory.lookup_failed", user_id=str(user_id), error=repr(exc))
            return None
        return Contact(email=str(user["email"]), full_name=str(user.get("full_name") or ""))

    async def aclose(self) -> None:
        """Close the connections."""
        await self.users.aclose()
        await self._http.aclose()
