"""A background task on the event loop that calls a function every ``interval_s`` seconds until
stopped; an exception is logged and the next round runs as planned. Retention and the queue
reconciliation each own one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

log = logging.getLogger("myspinbot")


class Periodic:
    """``fn`` every ``interval_s()`` seconds (read each round, so the owner may change it;
    ``first_now``: also once right at start)."""

    def __init__(self, name: str, fn: Callable[[], object], interval_s: Callable[[], float], *, first_now: bool,
                 failure: str):
        self.name, self.fn, self.interval_s, self.first_now, self.failure = name, fn, interval_s, first_now, failure
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self) -> None:
        """Start on the running loop (no-op when already started)."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if not self.first_now:
            await asyncio.sleep(self.interval_s())
        while True:
            try:
                self.fn()
            except Exception:  # retried at the next interval
                log.exception("myspinbot: %s", self.failure)
            await asyncio.sleep(self.interval_s())
