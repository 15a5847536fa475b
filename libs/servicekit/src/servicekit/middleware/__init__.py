"""Pure ASGI middleware (no ``BaseHTTPMiddleware``): cheap, streaming-safe, contextvar-safe."""

from servicekit.middleware.body_limit import BodySizeLimitMiddleware
from servicekit.middleware.rate_limit import RateLimitMiddleware
from servicekit.middleware.request_context import RequestContextMiddleware
from servicekit.middleware.security import SecurityHeadersMiddleware, TrustedHostMiddleware

__all__ = [
    "BodySizeLimitMiddleware",
    "RateLimitMiddleware",
    "RequestContextMiddleware",
    "SecurityHeadersMiddleware",
    "TrustedHostMiddleware",
]
