"""A live progress bar for a run (rows, rate, tokens, cost) and the summary printed after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
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
    """Await ``work`` while a progress bar redraws from the live counters four times a second."""
    if not enabled:
        return await work
    columns = (
        TextColumn("[bold]adapting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[tokens]}"),
        TextColumn("{task.fields[cost]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task_id = bar.add_task("adapt", total=None, rate="", tokens="", cost="")
        task = asyncio.ensure_future(work)
        while not task.done():
            _refresh(bar, task_id, counters, gateway)
            await asyncio.wait({task}, timeout=0.25)
        _refresh(bar, task_id, counters, gateway)
        return task.result()


def _refresh(bar: Progress, task_id: Any, counters: RunCounters, gateway: Gateway) -> None:
    elapsed = bar.tasks[0].elapsed or 0.0
    total = gateway.usage.total
    rate = counters.rows_done / elapsed if elapsed > 0 else 0.0
    bar.update(
        task_id,
        total=counters.rows_total or None,
        completed=counters.rows_done,
        rate=f"{rate:.1f} rows/s",
        tokens=f"{total.usage.total_tokens:,} tok",
        cost=f"${total.cost_usd:.4f}",
    )


def print_summary(summary: AdaptSummary, console: Console) -> None:
    """The end-of-run table: rows in and out, calls, cache hits, tokens, cost and time."""
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
    if quality and quality.get("grade_after"):
        improvement = quality.get("improvement_percent")
        shown = f", {improvement:+.1f}%" if isinstance(improvement, int | float) else ""
        rows.append(
            (
                "quality",
                f"{quality.get('grade_before')} → {quality.get('grade_after')} "
                f"({quality.get('score_before')} → {quality.get('score_after')}{shown})",
            )
        )
    if summary.report_path:
        rows.append(("report", summary.report_path))
    return rows


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
