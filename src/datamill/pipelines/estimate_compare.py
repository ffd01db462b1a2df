"""Estimate against actual: each figure of a quote beside what the run used, with the relative error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamill.llm.usage import UsageLedger
from datamill.pipelines.estimate import Estimate


def compare(
    estimate: Estimate, actual_usage: UsageLedger | Mapping[str, Any], *, rows_out: int | None = None
) -> dict[str, Any]:
    """Estimated against actual figures, each as ``{"estimated", "actual", "error"}``.

    ``error`` is (estimated − actual) / actual: positive when the estimate was high; None when the actual
    is 0 and the estimate is not (0.0 when both are). When the usage is broken down by step, the totals are
    summed over the estimated steps only, like for like; calls under other tags (an evaluation the estimate
    was not asked about) are listed under ``unestimated``.

    Args:
        estimate: what `estimate_plan` quoted.
        actual_usage: a gateway's `UsageLedger`, its ``snapshot()``, or a run summary dict
            (``AdaptSummary.to_dict()``: calls, input_tokens, ..., rows_out, usage_by_step).
        rows_out: the run's output rows, when ``actual_usage`` does not say; else the estimate's are used.
    """
    data = actual_usage.snapshot() if isinstance(actual_usage, UsageLedger) else actual_usage
    by_step: Mapping[str, Any] = data.get("by_tag", data.get("usage_by_step")) or {}
    names = [s.name for s in estimate.steps]
    totals = _sum_usage([by_step[n] for n in names if n in by_step]) if by_step else data.get("total", data)
    rows = rows_out if rows_out is not None else data.get("rows_out")
    actual_rows = int(rows) if rows is not None else estimate.rows_out
    actual_cost = float(totals.get("cost_usd") or 0.0)
    multimodal = estimate.multimodal_pricing_applied
    est = estimate  # short name: the figures below fit one line each
    out: dict[str, Any] = {
        **_figures(est.calls, est.input_tokens, est.output_tokens, est.thinking_tokens, totals),
        "cached_input_tokens": _pair(est.cached_input_tokens, int(totals.get("cached_input_tokens") or 0)),
        "cost_usd": _pair(est.cost_usd, actual_cost),
        "credits": _pair(
            est.credits, est.price_table.credits(actual_rows, actual_cost, multimodal=multimodal)
        ),
        "rows_out": _pair(est.rows_out, actual_rows),
        "steps": {
            s.name: _figures(
                s.calls, s.input_tokens, s.output_tokens, s.thinking_tokens, by_step.get(s.name) or {}
            )
            for s in est.steps
        },
        "cache_hits": int(totals.get("cache_hits") or 0),
        "unestimated": {tag: dict(usage) for tag, usage in by_step.items() if tag not in names},
        "notes": [],
    }
    if out["cache_hits"]:
        out["notes"].append(
            "calls answered from the response cache are free: their tokens are not in the actuals"
        )
    if out["unestimated"]:
        out["notes"].append(f"not in the estimate: {', '.join(out['unestimated'])}")
    return out


def _sum_usage(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    keys = (
        "requests",
        "calls",
        "cache_hits",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "thinking_tokens",
        "cost_usd",
    )
    return {key: sum(p.get(key) or 0 for p in parts) for key in keys}


def _figures(
    calls: int, tokens_in: int, tokens_out: int, thinking: int, actual: Mapping[str, Any]
) -> dict[str, Any]:
    a_in = int(actual.get("input_tokens") or 0)
    a_out = int(actual.get("output_tokens") or 0)
    a_thinking = int(actual.get("thinking_tokens") or 0)
    # Requests (paid, cached and failed) are what the estimate counts; tokens only exist for paid calls.
    a_calls = int(actual.get("requests") or actual.get("calls") or 0)
    if "requests" not in actual:
        a_calls += int(actual.get("cache_hits") or 0)
    return {
        "calls": _pair(calls, a_calls),
        "input_tokens": _pair(tokens_in, a_in),
        "output_tokens": _pair(tokens_out, a_out),
        "total_tokens": _pair(tokens_in + tokens_out + thinking, a_in + a_out + a_thinking),
    }


def _pair(estimated: float, actual: float) -> dict[str, Any]:
    if actual:
        error: float | None = (estimated - actual) / actual
    else:
        error = 0.0 if not estimated else None
    return {"estimated": estimated, "actual": actual, "error": error}


def comparison_markdown(comparison: Mapping[str, Any]) -> str:
    """A Markdown table of `compare`'s totals and per-step tokens, for summaries and reports."""
    lines = ["| figure | estimated | actual | error |", "|---|---:|---:|---:|"]
    figures = (
        "calls",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "total_tokens",
        "cost_usd",
        "credits",
        "rows_out",
    )
    rows = [(name, comparison[name]) for name in figures if name in comparison]
    for step, figs in (comparison.get("steps") or {}).items():
        rows += [(f"{step}: {name}", figs[name]) for name in ("calls", "total_tokens")]
    for name, pair in rows:
        error = pair["error"]
        shown = "n/a" if error is None else f"{error:+.1%}"
        lines.append(f"| {name} | {_num(pair['estimated'])} | {_num(pair['actual'])} | {shown} |")
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:,.4f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"
