"""Column mapping: turns a source row into datamill's canonical columns.

The prompt column becomes ``original_prompt`` (in universal-prompt mode every row gets the dataset-wide
instruction), the completion column ``original_completion``, and the context columns are rendered into one
``_context`` text ("name: value" lines) that the prompt templates use. Every other source column passes
through unchanged. Columns whose names start with ``_`` are internal and never written out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from datamill.steps.base import BatchStep, Row, StepContext

if TYPE_CHECKING:
    from datamill.core.mapping import ColumnMapping


class MapColumns(BatchStep):
    """Renames the mapped columns and renders context; never drops a row."""

    name: ClassVar[str] = "column_mapping"
    output_columns = ("original_prompt", "original_completion", "_context")

    def __init__(self, mapping: ColumnMapping) -> None:
        self.mapping = mapping
        self.input_columns = tuple(
            c for c in (mapping.prompt, mapping.completion, *mapping.context) if c is not None
        )

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        return [self.map_row(row) for row in rows]

    def map_row(self, row: Row) -> Row:
        m = self.mapping
        out: Row = {}
        if m.universal_prompt is not None:
            out["original_prompt"] = m.universal_prompt
        elif m.prompt is not None:
            out["original_prompt"] = _text(row.get(m.prompt))
        if m.completion is not None:
            out["original_completion"] = _text(row.get(m.completion))
        renamed = {m.prompt, m.completion}
        for key, value in row.items():
            if key not in renamed:
                out[key] = value
        out["_context"] = render_context(row, m.context)
        return out


def render_context(row: Row, columns: tuple[str, ...]) -> str:
    """The context columns of a row as ``name: value`` lines, skipping empty values."""
    lines = []
    for col in columns:
        value = row.get(col)
        if value is None or value == "":
            continue
        lines.append(f"{col}: {_text(value)}")
    return "\n".join(lines)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
