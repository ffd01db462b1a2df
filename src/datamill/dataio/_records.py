"""Turning JSON-like records (dicts) into Arrow record batches whose schema only ever widens.

Used by the json, jsonl and xlsx readers. The policy, chosen so that no value is ever silently dropped:

- Columns are the union of the keys seen so far, in first-seen order; a record without a key gets null there.
- A key that first appears in a later batch *widens* the schema: it is appended as a new column (earlier
  batches simply lack it; `pa.concat_tables(..., promote_options="permissive")` fills them with nulls).
- A column's type widens where Arrow can do so losslessly: null -> anything, int -> float, a struct or a list
  of structs gaining fields, a list of nulls -> a list of anything.
- Values of a column that have no common type (a number in one record, a string in another; a boolean and a
  number) raise a DataFormatError naming the column and where each kind was found: guessing a conversion (to
  text, say) would change the data behind the user's back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from datamill.core.errors import DataFormatError

Record = dict[str, Any]


def json_kind(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def kind_phrase(value: Any) -> str:
    """`json_kind` with its article: "an object", "a string"."""
    kind = json_kind(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


class RecordBatcher:
    """Builds record batches from lists of records, widening one running schema as it goes.

    Args:
        path: The file the records come from (for error messages).
        unit: How a position is named in messages: "line" (jsonl) or "row" (xlsx), where positions become the
            error's `line`, or "record" (json), where positions are record numbers.
        value_type: When given, every column has this type (xlsx reads every cell as a string) and `columns`
            (the header) are present from the first batch even where no record has a value.
        columns: Column names known before any record, used with `value_type`.
    """

    def __init__(
        self,
        path: str,
        unit: str = "line",
        *,
        value_type: pa.DataType | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.unit = unit
        self.value_type = value_type
        self.schema: pa.Schema | None = (
            pa.schema([(name, value_type) for name in columns])
            if value_type is not None and columns
            else None
        )

    def to_batch(self, records: list[Record], positions: list[int]) -> pa.RecordBatch:
        """Convert `records` (found at `positions`) into one batch with the widened running schema."""
        merged: dict[str, Any] = dict.fromkeys(self.schema.names if self.schema is not None else [])
        for record in records:
            merged.update(record)
        fields: list[pa.Field] = []
        arrays: list[pa.Array] = []
        for name in merged:
            values = [record.get(name) for record in records]
            array = self._column(name, values, positions)
            fields.append(pa.field(name, array.type))
            arrays.append(array)
        self.schema = pa.schema(fields)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _column(self, name: str, values: list[Any], positions: list[int]) -> pa.Array:
        try:
            array = pa.array(values, type=self.value_type)
        except (pa.ArrowException, OverflowError, TypeError) as exc:
            raise self._mixed_error(name, values, positions, exc) from exc
        if self.schema is None or self.schema.get_field_index(name) < 0:
            return array
        known = self.schema.field(name).type
        if array.type == known:
            return array
        try:
            wider = (
                pa.unify_schemas(
                    [pa.schema([(name, known)]), pa.schema([(name, array.type)])],
                    promote_options="permissive",
                )
                .field(name)
                .type
            )
            return array.cast(wider)
        except (pa.ArrowException, TypeError) as exc:
            first = next(i for i, value in enumerate(values) if value is not None)
            raise self._error(
                f"column {name!r} holds {known} values in earlier rows but {array.type} from {self.unit} "
                f"{positions[first]} on; every value of a column must have the same type (or be null)",
                positions[first],
            ) from exc

    def _mixed_error(
        self, name: str, values: list[Any], positions: list[int], exc: Exception
    ) -> DataFormatError:
        first = next(((i, json_kind(v)) for i, v in enumerate(values) if v is not None), None)
        if first is not None:
            for i, value in enumerate(values):
                if value is not None and json_kind(value) != first[1]:
                    return self._error(
                        f"column {name!r} mixes types: {first[1]} at {self.unit} {positions[first[0]]} "
                        f"but {json_kind(value)} at {self.unit} {positions[i]}; every value of a column must "
                        "have the same type (or be null)",
                        positions[i],
                    )
        return self._error(
            f"column {name!r}: the values in {self.unit}s {positions[0]} to {positions[-1]} cannot be stored "
            f"as one type ({exc})",
            None,
        )

    def _error(self, reason: str, position: int | None) -> DataFormatError:
        return DataFormatError(self.path, reason, line=position if self.unit != "record" else None)
