"""What a step is: declared input and output columns, and either a batch or a per-row transformation.

Rows are plain dicts. Batch steps (dedup, sampling) see whole batches in file order and may keep state across
them; row steps (model calls) see one row at a time and run concurrently across rows. A step drops a row by
rejecting it with a reason, so nothing disappears without a trace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

Row = dict[str, Any]


@dataclass(slots=True)
class Rejection:
    """A row a step removed, with the step's name and the reason."""

    row: Row
    step: str
    reason: str


@dataclass
class StepContext:
    """Shared, per-run state steps report into."""

    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, row: Row, step: str, reason: str) -> None:
        self.rejected.append(Rejection(row, step, reason))


class Step(ABC):
    """Common declaration of every step."""

    name: ClassVar[str]
    #: Columns the step reads (canonical names, after column mapping).
    input_columns: tuple[str, ...] = ()
    #: Columns the step adds or overwrites.
    output_columns: tuple[str, ...] = ()


class BatchStep(Step):
    """A step that sees batches in order; returns the rows that continue."""

    @abstractmethod
    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]: ...


class RowRejected(Exception):
    """Raised by a row step to remove the row from the output, with the reason."""


class RowStep(Step):
    """A step that transforms one row, usually with a model call.

    ``process_row`` changes the row in place and returns None, or returns a list of rows that replace it (the
    row itself and new rows, for a step that fans out); each continues through the remaining steps. It raises
    RowRejected to drop the row.
    """

    @abstractmethod
    async def process_row(self, row: Row, ctx: StepContext) -> list[Row] | None: ...
