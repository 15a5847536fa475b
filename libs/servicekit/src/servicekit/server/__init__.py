"""The HTTP server a service runs under: uvicorn with edge limits and problem+json refusals."""

from servicekit.server.protocol import GuardedHttpToolsProtocol, ServerLimits
from servicekit.server.run import limits_of, run_server

__all__ = ["GuardedHttpToolsProtocol", "ServerLimits", "limits_of", "run_server"]
