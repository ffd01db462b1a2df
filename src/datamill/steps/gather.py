"""Structured concurrency for steps and pipelines: a failure cancels the work it started, and no more."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Like ``asyncio.gather``, but the first error cancels the siblings (and is raised as itself).

    A run-stopping model error in one row must not leave the batch's other rows calling the model, and a
    run that stops must leave no task of its own behind on a long-lived event loop (the worker's).
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
