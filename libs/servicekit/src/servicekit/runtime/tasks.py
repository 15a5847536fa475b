"""One-off background work that a request starts and shutdown waits for."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from servicekit.context import RequestContext, request_context_var
from servicekit.observability.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Coroutine

log = get_logger(__name__)


class BackgroundTasks:
    """Runs coroutines as tasks that outlive the request; :meth:`aclose` waits for them.

    For work whose outcome the client must not be able to time (the lookup behind a
    password-reset request): the response leaves first. A failure is logged, never
    raised. Work in flight when the process dies is lost, so use it only where the client
    can simply ask again; what must survive a crash belongs in the outbox.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Start ``work`` now and return without waiting for it."""
        task = asyncio.create_task(self._run(work), name=self.name)
        self._tasks.add(task)  # a reference, or the task may be garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None]) -> None:
        # The task copied the request's context: its log lines keep the request id, but
        # its queries and rate-limit results must not land in the request's own counters.
        request_context_var.set(RequestContext())
        try:
            await work
        except Exception as exc:  # the request that started it has already been answered
            log.warning("background.task_failed", task=self.name, error=repr(exc))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Let the tasks under way finish (graceful shutdown); cancel those that overrun."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("background.tasks_cancelled", task=self.name, count=len(pending))
