"""What a step is: declared input and output columns, and either a batch or a per-row transformation.

Rows are plain dicts. Batch steps (dedup, sampling) see whole batches in file order and may keep state across
them; row steps (model calls) see one row at a time and run concurrently across rows. A step drops a row by
rejecting it with a reason, so nothing disappears without a trace.

Every step also declares what the estimator (`datamill.pipelines.estimate`) needs to quote a run without
running it, through the attributes and methods below with their defaults, so a new step is quoted without
any change to the estimator: the model it calls (``model``), the requests it would send for a row
(``requests_for``), the output tokens a row costs (``estimate_output_tokens``, by default the
``expected_output_tokens`` attribute), whether it is cheap and harmless to run on the sample rows
(``estimate_on_sample``), and how it changes the number of rows (``estimate_rows_out`` for a row step that
fans out, ``estimate_sample`` for a batch step that filters).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle
    from datamill.llm.types import ChatRequest

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
    #: The model the step calls (None: it calls none).
    model: ModelHandle | None = None
    #: Output tokens one row's requests produce, for the estimate (None: each request's ``max_tokens``).
    expected_output_tokens: int | None = None
    #: The estimator may run a copy of the step on the sample rows: it is local, cheap and calls nothing
    #: paid (a template, a local index, a dedup), so later steps are quoted on what they will see.
    estimate_on_sample: bool = False


class BatchStep(Step):
    """A step that sees batches in order; returns the rows that continue."""

    #: The plan already counts what the step does to the rows (column mapping, ``max_rows`` sampling),
    #: so the estimator leaves it out.
    counted_by_plan: ClassVar[bool] = False

    @abstractmethod
    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]: ...

    def forget(self) -> None:
        """Drop what the step remembers of the batches it saw (a dedup's index), once no batch is left.

        A resumed run rebuilds it by replaying the saved batches; steps that remember nothing do nothing.
        """

    def estimate_sample(self, rows: list[Row]) -> list[Row] | None:
        """The sample rows a fresh copy of the step keeps, or None when it is not measured on the sample.

        By default a copy runs when the step sets ``estimate_on_sample``; else it is assumed to drop no row.
        """
        if not self.estimate_on_sample:
            return None
        return copy.deepcopy(self).process_batch([dict(r) for r in rows], StepContext())


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

    def requests_for(self, row: Row) -> list[ChatRequest] | None:
        """The requests ``process_row`` would send for `row` (first attempts); None: not declared.

        The estimator counts a model step that declares none as one call per row over its input columns.
        """
        return None

    def estimate_output_tokens(self, row: Row) -> int | None:
        """Output tokens `row`'s requests produce; by default ``expected_output_tokens``."""
        return self.expected_output_tokens

    def estimate_requests(self) -> tuple[float, RowStep]:
        """The step whose ``requests_for`` renders the sample rows for the quote, and a factor on its count.

        A step that samples rows by chance renders every row and gives its sample rate as the factor, so the
        quote is the expected value rather than the luck of the sample.
        """
        return 1.0, self

    def estimate_rows_out(self, rows_in: int) -> int | None:
        """The rows that leave the step when `rows_in` enter, for a step that fans out; None: as many."""
        return None
