"""A run-stopping error in one row cancels the rest of its batch instead of letting them call the model."""

from __future__ import annotations

import asyncio

import pytest

from datamill.core.errors import PermanentModelError
from datamill.pipelines.adapt import gather_or_cancel


async def test_results_keep_order():
    async def value(n: int) -> int:
        await asyncio.sleep(0.001 * (3 - n))
        return n

    assert await gather_or_cancel([value(n) for n in range(3)]) == [0, 1, 2]


async def test_first_error_cancels_siblings_and_is_raised_as_itself():
    never = asyncio.Event()
    cancelled: list[int] = []

    async def waits(n: int) -> int:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def fails() -> int:
        await asyncio.sleep(0)
        raise PermanentModelError("bad key", status=401)

    with pytest.raises(PermanentModelError, match="bad key"):
        await gather_or_cancel([waits(1), fails(), waits(2)])
    assert sorted(cancelled) == [1, 2]
