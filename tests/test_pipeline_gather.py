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


async def test_a_row_rejection_lets_its_siblings_finish_so_their_billed_calls_are_counted():
    from datamill.core.errors import RefusalError
    from datamill.steps.base import RowRejected

    finished: list[int] = []

    async def sibling(n: int) -> int:
        await asyncio.sleep(0.01 * n)
        finished.append(n)
        return n

    async def refused() -> int:
        await asyncio.sleep(0)
        raise RefusalError("the model declined")

    async def rejected() -> int:
        await asyncio.sleep(0)
        raise RowRejected("margin too small")

    with pytest.raises(RefusalError, match="declined"):
        await gather_or_cancel([sibling(1), refused(), sibling(2)])
    assert sorted(finished) == [1, 2]
    finished.clear()
    with pytest.raises(RowRejected, match="margin"):
        await gather_or_cancel([sibling(1), rejected(), sibling(3)])
    assert sorted(finished) == [1, 3]


async def test_a_run_stopping_error_among_the_finishing_siblings_cancels_the_rest_and_is_raised():
    from datamill.steps.base import RowRejected

    never = asyncio.Event()
    cancelled: list[int] = []

    async def waits(n: int) -> int:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def rejected() -> int:
        raise RowRejected("one row")

    async def stops() -> int:
        await asyncio.sleep(0.01)
        raise PermanentModelError("bad key", status=401)

    with pytest.raises(PermanentModelError, match="bad key"):
        await gather_or_cancel([rejected(), waits(1), stops(), waits(2)])
    assert sorted(cancelled) == [1, 2]


async def test_cancelling_the_caller_while_siblings_finish_cancels_them():
    from datamill.steps.base import RowRejected

    never = asyncio.Event()
    cancelled: list[int] = []

    async def waits(n: int) -> int:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def rejected() -> int:
        raise RowRejected("one row")

    caller = asyncio.ensure_future(gather_or_cancel([rejected(), waits(1), waits(2)]))
    await asyncio.sleep(0.01)
    assert not caller.done()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(cancelled) == [1, 2]
