"""Run a coroutine to the end from synchronous code, inside a running event loop or not.

Outside any event loop (a script, a terminal) the coroutine runs on datamill's own loop (`event_loop.run`).
Inside one (a Jupyter cell, an async web handler) a second loop cannot start on the same thread, so the
coroutine runs on a fresh loop in a worker thread and the caller's thread waits for it; an interrupt
(Ctrl-C, Jupyter's stop button) while waiting cancels the work on that loop before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from datamill.llm import event_loop

T = TypeVar("T")


def in_running_loop() -> bool:
    """Whether this thread is running an event loop now (a notebook cell, an async handler)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]], loop: str = "auto") -> T:
    """The result of the coroutine `make` returns, run to the end on a loop of its own (module docstring)."""
    if not in_running_loop():
        return event_loop.run(make(), loop)
    worker = _Worker(make, loop)
    worker.start()
    try:
        worker.join()
    except BaseException:
        worker.cancel()
        worker.join()
        raise
    value: T = worker.result()
    return value


class _Worker(threading.Thread):
    """A thread that runs one coroutine on its own event loop and keeps its result or its error."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, T]], loop: str) -> None:
        super().__init__(name="datamill-run", daemon=True)
        self._make = make
        self._loop_choice = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._started = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = event_loop.run(self._main(), self._loop_choice)
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> Any:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started.set()
        return await self._make()

    def cancel(self) -> None:
        """Cancel the coroutine on the worker's loop (no-op once it finished)."""
        self._started.wait()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: the work is over
                loop.call_soon_threadsafe(task.cancel)

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value
