"""What runs beside the requests of a service process: background loops."""

from servicekit.runtime.loop import BackgroundLoop

__all__ = ["BackgroundLoop"]
