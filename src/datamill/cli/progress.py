"""A live progress bar for a run (rows, rate, tokens, cost) and the summary printed after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from datamill.llm.gateway import Gateway
    from datamill.pipelines.adapt import RunCounters
    from datamill.pipelines.estimate import Estimate
    from datamill.services.adaptation.adapt import AdaptSummary

T = TypeVar("T")


async def with_progress(
    work: Awaitable[T], counters: RunCounters, gateway: Gateway, console: Console, *, enabled: bool
) -> T:
    """Await ``work`` while a progress bar redraws from the live counters four times a second.

    Rows first ("adapting"); when the run goes on to grade its before/after sample, a second bar
    ("evaluating") counts the judge's calls, so the display never sits still at rows done.
    """
    if not enabled:
        return await work
    with Progress(*_columns("{task.description}"), console=console, transient=False) as bar:
        rows = bar.add_task("adapting", total=None, rate="", tokens="", cost="")
        judged: Any = None
        task = asyncio.ensure_future(work)
        while not task.done():
            judged = _refresh(bar, rows, judged, counters, gateway)
            await asyncio.wait({task}, timeout=0.25)
        _refresh(bar, rows, judged, counters, gateway)
        return task.result()


def _columns(label: str) -> tuple[Any, ...]:
    return (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[tokens]}"),
        TextColumn("{task.fields[cost]}"),
        TimeElapsedColumn(),
    )


def _refresh(bar: Progress, rows: Any, judged: Any, counters: RunCounters, gateway: Gateway) -> Any:
    """Redraw the bars; returns the evaluation bar's id once the evaluation started."""
    total = gateway.usage.total
    tokens, cost = f"{total.usage.total_tokens:,} tok", f"${total.cost_usd:.4f}"
    elapsed = bar.tasks[0].elapsed or 0.0
    rate = counters.rows_done / elapsed if elapsed > 0 else 0.0
    if judged is None:
        bar.update(
            rows,
            total=counters.rows_total or None,
            completed=counters.rows_done,
            rate=f"{rate:.1f} rows/s",
            tokens=tokens,
            cost=cost,
        )
    if counters.phase == "evaluating":
        if judged is None:
            bar.update(rows, total=counters.rows_done or None, completed=counters.rows_done)
            judged = bar.add_task("evaluating", total=None, rate="judge calls", tokens="", cost="")
        bar.update(
            judged, total=counters.to_judge or None, completed=counters.judged, tokens=tokens, cost=cost
        )
    return judged


async def with_live(
    work: Awaitable[T],
    label: str,
    gateway: Gateway,
    console: Console,
    *,
    enabled: bool,
    unit: str = "samples",
    read: Callable[[], tuple[int | None, int | None]] | None = None,
) -> T:
    """Await ``work`` under a bar labelled `label`.

    The bar shows ``read()`` (done, total) when given, else the model calls so far, with the tokens and the
    cost; the elapsed time runs until the work ends.
    """
    if not enabled:
        return await work
    with Progress(*_columns("{task.description}"), console=console, transient=False) as bar:
        task_id = bar.add_task(label, total=None, rate="", tokens="", cost="")
        task = asyncio.ensure_future(work)
        while not task.done():
            _live(bar, task_id, gateway, unit, read)
            await asyncio.wait({task}, timeout=0.25)
        _live(bar, task_id, gateway, unit, read, finished=True)
        return task.result()


def _live(
    bar: Progress,
    task_id: Any,
    gateway: Gateway,
    unit: str,
    read: Callable[[], tuple[int | None, int | None]] | None,
    *,
    finished: bool = False,
) -> None:
    total = gateway.usage.total
    done, expected = read() if read is not None else (None, None)
    if finished and done is None:
        done = expected = 1  # the work ended: a full bar stops the clock
    bar.update(
        task_id,
        total=expected,
        completed=done or 0,
        rate=f"{total.calls:,} calls" if read is None else unit,
        tokens=f"{total.usage.total_tokens:,} tok",
        cost=f"${total.cost_usd:.4f}",
    )


#: Why a side of the evaluation has no grade (the judge failed on every judged row of it, or none was left).
NOT_SCORED = "no judged row was scored, the report says why"


def print_summary(summary: AdaptSummary, console: Console) -> None:
    """The end-of-run table: rows in and out, calls, cache hits, tokens, cost, time, grounding and quality."""
    from datamill.pipelines.grounding_report import grounding_lines

    table = Table(title="datamill adapt", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rejected = ", ".join(f"{k}: {v}" for k, v in summary.rejections_by_step.items()) or "none"
    rows = [
        ("model", summary.model),
        ("steps", " → ".join(summary.steps)),
        ("rows in", f"{summary.rows_in:,} ({summary.rows_selected:,} selected)"),
        ("rows out", f"{summary.rows_out:,}"),
        ("rows rejected", f"{summary.rows_rejected:,} ({rejected})"),
        ("model calls", f"{summary.calls:,} sent, {summary.cache_hits:,} from cache"),
        ("tokens", _tokens(summary)),
        ("cost", f"${summary.cost_usd:.4f}"),
        ("time", f"{summary.elapsed_s:.1f} s"),
        ("output", summary.output_path),
    ]
    if summary.rejected_path:
        rows.append(("rejected rows", summary.rejected_path))
    rows.extend(grounding_lines(summary.grounding).items())
    rows.extend(_quality_rows(summary))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}")


def _quality_rows(summary: AdaptSummary) -> list[tuple[str, str]]:
    rows = []
    versus = summary.estimate_vs_actual or {}
    tokens = versus.get("total_tokens") or {}
    if tokens.get("estimated") is not None:
        error = tokens.get("error")
        shown = f" ({error:+.0%})" if isinstance(error, float) else ""
        rows.append(
            ("estimate", f"{tokens['estimated']:,} tokens estimated, {tokens.get('actual', 0):,} used{shown}")
        )
    quality = summary.quality
    if quality:
        rows.append(("quality", _quality(quality)))
    elif summary.evaluation_status == "failed":
        rows.append(("quality", f"– → – ({NOT_SCORED})"))
    if summary.report_path:
        rows.append(("report", summary.report_path))
    return rows


def _quality(quality: dict[str, Any]) -> str:
    """Grades and scores before → after; a side without a grade says so (no row of it was scored)."""
    improvement = quality.get("improvement_percent")
    shown = f", {improvement:+.1f}%" if isinstance(improvement, int | float) else ""
    grades = [quality.get(f"grade_{side}") or "–" for side in ("before", "after")]
    scores = " → ".join(
        "–" if s is None else str(s) for s in (quality.get("score_before"), quality.get("score_after"))
    )
    missing = [side for side in ("before", "after") if not quality.get(f"grade_{side}")]
    if missing:
        shown += f"; no grade {' or '.join(missing)}: {NOT_SCORED}"
    return f"{grades[0]} → {grades[1]} ({scores}{shown})"


def print_estimate(estimate: Estimate, console: Console) -> None:
    """The plan's quote: per-step calls and tokens, then rows, credits, cost and minutes."""
    table = Table(title="datamill adapt --estimate", title_justify="left")
    for column in ("step", "model", "calls/row", "calls", "input tokens", "output tokens", "cost"):
        table.add_column(column)
    for step in estimate.steps:
        table.add_row(
            step.name,
            step.model or "-",
            f"{step.calls_per_row:.2f}",
            f"{step.calls:,}",
            f"{step.input_tokens:,}",
            f"{step.output_tokens:,}",
            f"${step.cost_usd:.4f}",
        )
    if not console.is_terminal:  # piped: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    console.print(
        f"rows in {estimate.rows_in:,} → out ≈ {estimate.rows_out:,}; calls {estimate.calls:,}; "
        f"tokens {estimate.total_tokens:,}; credits {estimate.credits:g}; cost ${estimate.cost_usd:.4f}; "
        f"about {estimate.minutes:.1f} minutes"
    )
    for note in estimate.notes:
        console.print(f"note: {note}")


def _tokens(summary: AdaptSummary) -> str:
    """Tokens in (and how many of them the providers read from their prompt cache) and out."""
    cached = (
        f" ({summary.cached_input_tokens:,} from the prompt cache)" if summary.cached_input_tokens else ""
    )
    return f"{summary.input_tokens:,} in{cached}, {summary.output_tokens:,} out"
