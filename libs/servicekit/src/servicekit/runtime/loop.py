"""Background loops: a step repeated until the process stops, safe to stop mid-step."""

from __future__ import annotations

import asyncio
import contextlib

from servicekit.observability.logging import get_logger

log = get_logger(__name__)


class BackgroundLoop:
    """Runs :meth:`step` every ``interval_s``, or at once when woken, until stopped.

    A failing step is handed to :meth:`on_error` and the loop goes on. :meth:`stop` lets a
    step in flight finish for up to ``grace_s`` (a transaction cancelled inside a driver
    may keep its connection, and on SQLite the write lock), then cancels it. A stop flag
    backs up the cancellation: a ``CancelledError`` that lands inside a database or Redis
    call can be swallowed by the driver, and the loop would otherwise run on, and shutdown
    wait for it, forever.
    """

    def __init__(
        self, *, name: str, interval_s: float, grace_s: float = 0.0, error_backoff_s: float = 0.5
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.grace_s = grace_s
        #: The least wait after a failed step, so a loop with no interval never spins.
        self.error_backoff_s = error_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def step(self) -> None:
        """One round of the loop's work; subclasses implement it."""
        raise NotImplementedError

    def on_error(self, exc: Exception) -> None:
        """A step failed; the next one runs after the interval as usual."""
        log.warning("background.step_failed", loop=self.name, error=repr(exc))

    def wake(self) -> None:
        """Run the next step now rather than after the interval."""
        self._wake.set()

    def start(self) -> None:
        """Run the loop in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Stop after the step in flight, or cancel it.

        The step gets ``grace_s`` to finish; a cancelled one gets ``timeout_s`` more, after
        which the loop is abandoned (and a warning logged).
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        if self.grace_s > 0:
            await asyncio.wait({task}, timeout=self.grace_s)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=timeout_s)
        if not task.done():
            log.warning("background.stop_timeout", loop=self.name, timeout_s=timeout_s)
        elif not task.cancelled() and task.exception() is not None:
            log.warning("background.failed", loop=self.name, error=repr(task.exception()))

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait_s = self.interval_s
            try:
                await self.step()
            except Exception as exc:  # keep looping whatever happened
                self.on_error(exc)
                wait_s = max(wait_s, self.error_backoff_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
