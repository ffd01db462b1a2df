"""Pipeline plumbing: a row error that stops the run cancels its batch; the GC setting a command opts into."""

from __future__ import annotations

import asyncio

import pytest

from datamill.core.errors import PermanentModelError, RefusalError
from datamill.steps.base import RowRejected
from datamill.steps.gather import gather_or_cancel


class Held:
    """Tasks that wait until they are cancelled, and the numbers of those that were."""

    def __init__(self) -> None:
        self.never = asyncio.Event()
        self.cancelled: list[int] = []

    async def waits(self, n: int) -> int:
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.cancelled.append(n)
            raise
        return n


async def rejected() -> int:
    raise RowRejected("one row")


async def test_results_keep_order():
    async def value(n: int) -> int:
        await asyncio.sleep(0.001 * (3 - n))
        return n

    assert await gather_or_cancel([value(n) for n in range(3)]) == [0, 1, 2]


async def test_first_error_cancels_siblings_and_is_raised_as_itself():
    held = Held()

    async def fails() -> int:
        await asyncio.sleep(0)
        raise PermanentModelError("bad key", status=401)

    with pytest.raises(PermanentModelError, match="bad key"):
        await gather_or_cancel([held.waits(1), fails(), held.waits(2)])
    assert sorted(held.cancelled) == [1, 2]


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
    finished: list[int] = []

    async def sibling(n: int) -> int:
        await asyncio.sleep(0.01 * n)
        finished.append(n)
        return n

    async def refused() -> int:
        await asyncio.sleep(0)
        raise RefusalError("the model declined")

    with pytest.raises(RefusalError, match="declined"):
        await gather_or_cancel([sibling(1), refused(), sibling(2)])
    assert sorted(finished) == [1, 2]
    finished.clear()
    with pytest.raises(RowRejected, match="one row"):
        await gather_or_cancel([sibling(1), rejected(), sibling(3)])
    assert sorted(finished) == [1, 3]


async def test_a_run_stopping_error_among_the_finishing_siblings_cancels_the_rest_and_is_raised():
    held = Held()

    async def stops() -> int:
        await asyncio.sleep(0.01)
        raise PermanentModelError("bad key", status=401)

    with pytest.raises(PermanentModelError, match="bad key"):
        await gather_or_cancel([rejected(), held.waits(1), stops(), held.waits(2)])
    assert sorted(held.cancelled) == [1, 2]


async def test_cancelling_the_caller_while_siblings_finish_cancels_them():
    held = Held()
    caller = asyncio.ensure_future(gather_or_cancel([rejected(), held.waits(1), held.waits(2)]))
    await asyncio.sleep(0.01)
    assert not caller.done()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(held.cancelled) == [1, 2]
