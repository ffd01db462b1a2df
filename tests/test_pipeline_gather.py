"""Pipeline plumbing: a row error that stops the run cancels its batch; the GC setting a command opts into."""

from __future__ import annotations

import asyncio

import pytest

from datamill.core.errors import PermanentModelError
from datamill.steps.gather import gather_or_cancel


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


def test_quiet_gc_restores_the_collector_after_nested_runs():
    import gc

    from datamill.cli.process import quiet_gc

    before = gc.get_threshold()
    with quiet_gc(young_threshold=12_345):
        assert gc.get_threshold()[0] == max(before[0], 12_345)
        assert gc.get_freeze_count() > 0
        with quiet_gc():
            assert gc.get_threshold()[0] == max(before[0], 12_345)
        assert gc.get_threshold()[0] == max(before[0], 12_345)  # the outer run still holds it
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
