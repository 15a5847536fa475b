"""What runs beside the requests of a service process: background loops and tasks."""

from servicekit.runtime.loop import BackgroundLoop
from servicekit.runtime.tasks import BackgroundTasks

__all__ = ["BackgroundLoop", "BackgroundTasks"]
