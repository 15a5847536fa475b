"""Pure ASGI middleware (no ``BaseHTTPMiddleware``): cheap, streaming-safe, contextvar-safe."""

from servicekit.middleware.chassis import ChassisMiddleware

__all__ = ["ChassisMiddleware"]
