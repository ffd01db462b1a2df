"""Progress of a Python API call, reported to a callback the caller passes (``progress=``).

The callback gets a `Progress` about four times a second while rows flow, and once more at the end
(``finished=True``). It runs on the thread doing the work: in a notebook that is a worker thread, so it
should only update a display (a tqdm bar, an ipywidgets label), not block. `tqdm_progress` returns a
ready-made callback drawing a tqdm bar (a notebook widget in Jupyter, text in a terminal).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from datamill.llm.gateway import Gateway
from datamill.pipelines.adapt import RunCounters

T = TypeVar("T")

#: How often the callback hears of the run, in seconds.
INTERVAL_S = 0.25


@dataclass(frozen=True)
class Progress:
    """Where a run stands.

    Attributes:
        rows_total: rows the run will read (0 until it is known).
        rows_done: rows that went through every step so far.
        rows_out: rows kept so far.
        rows_rejected: rows removed so far (the rejected rows say why).
        calls: model calls made so far (cache hits included).
        tokens: input and output tokens billed so far.
        cost_usd: what those calls cost.
        finished: True on the last report, after the run ended.
        phase: ``adapting`` while rows flow, ``evaluating`` while the judge grades the before/after sample
            (``generating`` and ``evaluating`` for `datamill.generate` and `datamill.evaluate`).
        judged: the evaluation's judge calls made so far, of ``to_judge`` (two per sampled row).
    """

    rows_total: int
    rows_done: int
    rows_out: int
    rows_rejected: int
    calls: int
    tokens: int
    cost_usd: float
    finished: bool = False
    phase: str = "adapting"
    judged: int = 0
    to_judge: int = 0


ProgressCallback = Callable[[Progress], Any]


def snapshot(counters: RunCounters, gateway: Gateway, *, finished: bool = False) -> Progress:
    total = gateway.usage.total
    return Progress(
        rows_total=counters.rows_total,
        rows_done=counters.rows_done,
        rows_out=counters.rows_out,
        rows_rejected=counters.rows_rejected,
        calls=total.calls,
        tokens=total.usage.total_tokens,
        cost_usd=total.cost_usd,
        finished=finished,
        phase=counters.phase,
        judged=counters.judged,
        to_judge=counters.to_judge,
    )


async def reporting(
    work: Awaitable[T], counters: RunCounters, gateway: Gateway, callback: ProgressCallback | None
) -> T:
    """Await `work`, telling `callback` how it goes every `INTERVAL_S` and once when it ends."""
    return await watching(work, lambda: snapshot(counters, gateway), callback)


async def watching(
    work: Awaitable[T],
    where: Callable[[], Progress],
    callback: ProgressCallback | None,
    *,
    final: Callable[[], Progress] | None = None,
) -> T:
    """Await `work`, telling `callback` ``where()`` every `INTERVAL_S`.

    Once it ended the callback gets ``final()`` (default ``where()``) with ``finished=True``.
    """
    if callback is None:
        return await work
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            callback(where())
            await asyncio.wait({task}, timeout=INTERVAL_S)
    except BaseException:
        task.cancel()
        raise
    result = task.result()
    callback(dataclasses.replace((final or where)(), finished=True))
    return result


def tqdm_progress(description: str = "adapting", unit: str = "row") -> ProgressCallback:
    """A callback drawing a tqdm bar (``tqdm.auto``: a widget in Jupyter); needs ``pip install tqdm``.

    For `datamill.generate` and `datamill.evaluate` pass ``unit="sample"``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(desc=description, unit=unit)

    def update(progress: Progress) -> None:
        if progress.phase == "evaluating" and progress.to_judge:
            # The rows are done; the bar goes on with the judge's calls instead of sitting at rows done.
            bar.set_description("evaluating", refresh=False)
            bar.total, bar.n = progress.to_judge, progress.judged
            bar.unit = "call"
        else:
            if progress.rows_total and bar.total != progress.rows_total:
                bar.total = progress.rows_total
            bar.n = progress.rows_done
        bar.set_postfix(kept=progress.rows_out, tokens=progress.tokens, cost=f"${progress.cost_usd:.4f}")
        if progress.finished:
            bar.close()

    return update
