"""``max_rows`` sampling: a seeded, reproducible random choice of rows, made while streaming.

The pipeline counts the rows first, so the sample is drawn from row numbers up front and every row is
either in or out as it streams past; the output keeps file order.
"""

from __future__ import annotations

import random
from typing import ClassVar

from datamill.steps.base import BatchStep, Row, StepContext


def choose_rows(total: int, max_rows: int, seed: int) -> frozenset[int]:
    """Row numbers (1-based) of a uniform random sample of ``max_rows`` out of ``total``."""
    return frozenset(random.Random(seed).sample(range(1, total + 1), max_rows))


class SampleRows(BatchStep):
    """Keeps only the chosen row numbers; rows outside the sample are not rejections, just not selected."""

    name: ClassVar[str] = "max_rows"
    counted_by_plan = True  # the plan's rows_selected is exact

    def __init__(self, chosen: frozenset[int]) -> None:
        self.chosen = chosen

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        return [row for row in rows if row["_row"] in self.chosen]
