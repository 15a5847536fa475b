"""Authlib's OAuth 2 client (an independent implementation) pointed at the in-process app."""

from __future__ import annotations

from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

TOKEN_URL = "http://localhost/oauth/token"


def oauth_client(client: httpx.AsyncClient, **kwargs: Any) -> AsyncOAuth2Client:
    """An Authlib client speaking to the same app (and transaction) as ``client``."""
    return AsyncOAuth2Client(
        transport=client._transport,  # the app's ASGI transport, lifespan already running
        base_url=str(client.base_url),
        **kwargs,
    )
