"""An invent job's ``language_expansion``: the invented rows translated or localized, as ``adapt`` does it.

The rows go through `datamill.steps.expansion.LanguageExpansionStep` (the step of translate and localize
runs: a seeded ``sample_rate`` of rows, one new row per target, each checked by language identification and
for injection, asked again once, then rejected with its reason). The invented prompt and completion are
what the step rewrites; a new row carries ``language``, ``country``, ``expansion`` and ``source_row`` (the
invented row it came from, from 1), and the invented rows get their detected ``language``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from datamill.core.expansion import parse_language_expansion
from datamill.llm.gateway import ModelHandle
from datamill.steps.base import Row, StepContext
from datamill.steps.expansion import LanguageExpansionStep
from datamill.text.langid import FastLangDetector

#: Rows expanded at once (the gateway's per-model limits bound the calls further).
CONCURRENCY = 16


async def expand_rows(
    rows: list[dict[str, Any]], expansion: Mapping[str, Any], model: ModelHandle
) -> tuple[list[dict[str, Any]], int]:
    """The rows with their new variants after each (module docstring), and how many variants were rejected."""
    step = LanguageExpansionStep(model, parse_language_expansion(expansion), FastLangDetector(), seed=0)
    ctx = StepContext()
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(number: int, row: dict[str, Any]) -> list[Row]:
        work: Row = {
            **row,
            "original_prompt": row["enhanced_prompt"],
            "original_completion": row["enhanced_completion"],
            "_context": "",
            "_row": number,
        }
        async with limit:
            made = await step.process_row(work, ctx)
        return made if made is not None else [work]

    results = await asyncio.gather(*(one(n, row) for n, row in enumerate(rows, start=1)))
    out = []
    for variants in results:
        for variant in variants:
            out.append(
                {k: v for k, v in variant.items() if not k.startswith("_")}
                | {
                    "enhanced_prompt": variant["original_prompt"],
                    "enhanced_completion": variant["original_completion"],
                    "original_prompt": None,
                    "original_completion": None,
                }
            )
    return out, len(ctx.rejected)
