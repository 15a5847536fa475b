"""Service-to-service HTTP calls: ``ServiceClient`` with client-credentials tokens.

::

    credentials = ClientCredentials(http, token_url=..., client_id=..., client_secret=...)
    users = ServiceClient("user_service", "http://users", credentials=credentials)
    user = await users.get_json(f"/api/v1/users/{user_id}")
"""

from servicekit.client.errors import (
    CircuitOpen,
    CredentialsRejected,
    UpstreamError,
    UpstreamProblem,
    UpstreamUnavailable,
)
from servicekit.client.service import ServiceClient, propagation_headers
from servicekit.client.tokens import ClientCredentials

__all__ = [
    "CircuitOpen",
    "ClientCredentials",
    "CredentialsRejected",
    "ServiceClient",
    "UpstreamError",
    "UpstreamProblem",
    "UpstreamUnavailable",
    "propagation_headers",
]
