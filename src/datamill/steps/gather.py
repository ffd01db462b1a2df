"""Structured concurrency for steps and pipelines: a failure that stops the run cancels the work it started.

A failure that only rejects a row (`RowRejected`, or a model error that `fails_every_row` does not
name) leaves its siblings to finish: their model calls are already sent, and the provider bills a call
whether or not its reader still waits. Cancelling them would save nothing and drop their usage from the
run's cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from datamill.core.errors import ModelError, fails_every_row
from datamill.steps.base import RowRejected

T = TypeVar("T")


def rejects_one_row(exc: BaseException) -> bool:
    """Whether ``exc`` rejects the row it came from and leaves the run going."""
    return isinstance(exc, RowRejected) or (isinstance(exc, ModelError) and not fails_every_row(exc))


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Like ``asyncio.gather``, raising the first error as itself; a run-stopping error cancels the rest.

    A run-stopping model error in one row must not leave the batch's other rows calling the model, and a
    run that stops must leave no task of its own behind on a long-lived event loop (the worker's). After a
    row-level error the siblings finish first (their usage is counted); a run-stopping error among them is
    raised in its place.
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException as first:
        if not rejects_one_row(first):
            await _cancel(tasks)
            raise
        try:
            stopping = await _first_stopping_error(tasks)
        except BaseException:  # the caller was cancelled while the siblings finished
            await _cancel(tasks)
            raise
        if stopping is not None:
            await _cancel(tasks)
            raise stopping from first
        raise


async def _first_stopping_error(tasks: Sequence[asyncio.Future[Any]]) -> BaseException | None:
    """Wait for ``tasks`` to end; the first error among them that stops the run (None: there was none)."""
    pending = {task for task in tasks if not task.done()}
    while True:
        for task in tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                if error is not None and not rejects_one_row(error):
                    return error
        if not pending:
            return None
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
